#!/bin/sh
# Run by the postgres image on its first start (/docker-entrypoint-initdb.d): the instances' role.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v owner="$POSTGRES_USER" -v app_role=boxoffice_app -v app_password="$BOXOFFICE_APP_DB_PASSWORD" \
  -v schema=boxoffice -f /boxoffice/roles.sql
