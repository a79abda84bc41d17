-- 2.3.3: a data-only migration. It changes no table or column, so the schema fingerprint stays the
-- same, yet 2.3.1 and 2.3.2 no longer recognise the brain and answer MIGRATION_REQUIRED: the case where
-- an image-only rollback has to fall through to the data rollback.
UPDATE conversations SET role = lower(role) WHERE role <> lower(role);
