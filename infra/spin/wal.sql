-- Spin's `default` SQLite database in write-ahead-log mode (issue 12, item 3).
--
-- `spin up` opens its local SQLite files with SQLite's defaults: a rollback journal, which
-- costs several fsyncs per committed write (sign-ins, codes and refresh tokens all write).
-- The journal mode is recorded in the database file, so switching it once here lasts for
-- every later connection, Spin's included. Pass it with the migrations:
--   spin up ... --sqlite @infra/spin/wal.sql --sqlite @infra/migrations/0001_init.sql ...
-- Only for Spin's local SQLite: libSQL/Turso and D1 manage their own journals (D1 refuses
-- this pragma), so the shared migrations in infra/migrations do not carry it.
PRAGMA journal_mode=WAL;
