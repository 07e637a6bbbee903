-- Two roles for a boxoffice database, run once by a superuser (or the database's owner) before the
-- first `boxoffice migrate`:
--   :owner    owns the schema and runs `boxoffice migrate` (DDL);
--   :app_role what the instances log in as: rows only, no CREATE anywhere, so a compromised or buggy
--             instance cannot change the schema. Instances run with BOXOFFICE_MIGRATE=false.
-- psql variables (psql -v name=value): owner, app_role, app_password, schema.
--   psql -v owner=boxoffice -v app_role=boxoffice_app -v app_password=… -v schema=boxoffice -f roles.sql
\set ON_ERROR_STOP on
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'app_role', :'app_password')
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app_role') \gexec
CREATE SCHEMA IF NOT EXISTS :"schema" AUTHORIZATION :"owner";
GRANT USAGE ON SCHEMA :"schema" TO :"app_role";
-- Tables and sequences the owner creates in the schema from now on (every migration) are readable and
-- writable by the instances; the ones that exist already too.
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA :"schema"
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app_role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA :"schema"
  GRANT USAGE, SELECT ON SEQUENCES TO :"app_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA :"schema" TO :"app_role";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA :"schema" TO :"app_role";
