//! The tables of an edgeid export: their columns (primary key first, secret and sticky
//! columns marked) and the SQL built from them once.

use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Db {
    Main,
    Credentials,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ty {
    Int,
    Text,
    OptInt,
    OptText,
}

pub(super) struct Col {
    pub(super) name: &'static str,
    pub(super) ty: Ty,
    pub(super) secret: bool,
    /// A single-use or revocation mark (`used_at`, `revoked_at`, `ended_at`, TOTP's
    /// `last_step`): an import never moves it backwards, so importing an older export over a
    /// live host cannot make a used refresh token, recovery code or TOTP code usable again,
    /// or a revoked grant live again.
    pub(super) sticky: bool,
}

/// A table of the export: its columns, primary key first.
pub(super) struct Table {
    pub(super) name: &'static str,
    pub(super) db: Db,
    /// `name:type` with type `t` (TEXT), `i` (INTEGER), `t?`/`i?` (NULL allowed), and a
    /// trailing `!` for a secret column and `~` for a sticky one ([`Col::sticky`]).
    pub(super) columns: &'static [&'static str],
    /// How many leading columns form the primary key.
    pub(super) pk: usize,
    /// Nothing in it is useful without its secrets.
    pub(super) secret_only: bool,
}

/// In import order: users before what names them.
pub(super) const TABLES: &[Table] = &[
    Table {
        name: "users",
        db: Db::Main,
        columns: &[
            "id:t",
            "email:t",
            "username:t",
            "name:t",
            "given_name:t",
            "family_name:t",
            "email_verified:i",
            "is_admin:i",
            "disabled:i",
            "created_at:i",
            "updated_at:i",
        ],
        pk: 1,
        secret_only: false,
    },
    Table {
        name: "user_factors",
        db: Db::Main,
        columns: &["user_id:t", "totp:i", "updated_at:i"],
        pk: 1,
        secret_only: false,
    },
    Table {
        name: "password_credentials",
        db: Db::Credentials,
        columns: &["user_id:t", "phc:t!", "updated_at:i"],
        pk: 1,
        secret_only: true,
    },
    Table {
        name: "totp_credentials",
        db: Db::Credentials,
        columns: &[
            "user_id:t",
            "secret_sealed:t!",
            "created_at:i",
            "last_step:i~",
        ],
        pk: 1,
        secret_only: true,
    },
    Table {
        name: "recovery_codes",
        db: Db::Credentials,
        columns: &["user_id:t", "code_sha256:t!", "used_at:i?~"],
        pk: 2,
        secret_only: true,
    },
    // Where an imported password came from (`edgeid import kratos`): keeps a re-run of that
    // import on the new host `unchanged`.
    Table {
        name: "imported_passwords",
        db: Db::Credentials,
        columns: &["user_id:t", "source_sha256:t", "imported_at:i"],
        pk: 1,
        secret_only: false,
    },
    Table {
        name: "clients",
        db: Db::Main,
        columns: &[
            "client_id:t",
            "client_secret_sha256:t?!",
            "client_name:t",
            "grant_types:t",
            "response_types:t",
            "redirect_uris:t",
            "post_logout_redirect_uris:t",
            "scope:t",
            "audience:t",
            "token_endpoint_auth_method:t",
            "skip_consent:i",
            "id_token_signed_response_alg:t",
            "owner:t",
            "metadata:t",
            "created_at:i",
            "updated_at:i",
        ],
        pk: 1,
        secret_only: false,
    },
    Table {
        name: "apps",
        db: Db::Main,
        columns: &[
            "slug:t",
            "name:t",
            "url:t",
            "external:i",
            "client_id:t",
            "created_at:i",
            "updated_at:i",
        ],
        pk: 1,
        secret_only: false,
    },
    Table {
        name: "app_logos",
        db: Db::Main,
        columns: &["app_slug:t", "logo_url:t", "updated_at:i"],
        pk: 1,
        secret_only: false,
    },
    Table {
        name: "app_roles",
        db: Db::Main,
        columns: &["user_id:t", "app_slug:t", "role:t", "granted_at:i"],
        pk: 3,
        secret_only: false,
    },
    Table {
        name: "consents",
        db: Db::Main,
        columns: &["user_id:t", "client_id:t", "scope:t", "granted_at:i"],
        pk: 2,
        secret_only: false,
    },
    Table {
        name: "signing_keys",
        db: Db::Main,
        columns: &[
            "kid:t",
            "alg:t",
            "state:t",
            "public_jwk:t",
            "private_sealed:t!",
            "created_at:i",
            "activated_at:i?",
            "retired_at:i?",
            "expires_at:i?",
        ],
        pk: 1,
        secret_only: false,
    },
    Table {
        name: "grants",
        db: Db::Main,
        columns: &[
            "id:t",
            "client_id:t",
            "user_id:t",
            "sid:t",
            "scope:t",
            "created_at:i",
            "revoked_at:i?~",
        ],
        pk: 1,
        secret_only: false,
    },
    Table {
        name: "refresh_tokens",
        db: Db::Main,
        columns: &[
            "token_sha256:t!",
            "grant_id:t",
            "client_id:t",
            "scope:t",
            "auth_time:i",
            "amr:t",
            "created_at:i",
            "expires_at:i",
            "used_at:i?~",
        ],
        pk: 1,
        secret_only: true,
    },
    Table {
        name: "sessions",
        db: Db::Main,
        columns: &[
            "token_sha256:t!",
            "sid:t",
            "user_id:t",
            "auth_time:i",
            "amr:t",
            "created_at:i",
            "expires_at:i",
            "ended_at:i?~",
        ],
        pk: 1,
        secret_only: true,
    },
    Table {
        name: "revoked_access_tokens",
        db: Db::Main,
        columns: &["jti:t", "expires_at:i"],
        pk: 1,
        secret_only: false,
    },
];

impl Table {
    pub(super) fn cols(&self) -> impl Iterator<Item = Col> + '_ {
        self.columns.iter().map(|c| {
            let (name, ty) = c.split_once(':').unwrap_or((c, "t"));
            let secret = ty.contains('!');
            let sticky = ty.contains('~');
            let ty = match ty.trim_end_matches(['!', '~']) {
                "i" => Ty::Int,
                "i?" => Ty::OptInt,
                "t?" => Ty::OptText,
                _ => Ty::Text,
            };
            Col {
                name,
                ty,
                secret,
                sticky,
            }
        })
    }

    pub(super) fn names(&self, with_secrets: bool) -> Vec<&'static str> {
        self.cols()
            .filter(|c| with_secrets || !c.secret)
            .map(|c| c.name)
            .collect()
    }

    pub(super) fn has(&self, column: &str) -> bool {
        self.cols().any(|c| c.name == column)
    }
}

/// The SQL of one table, built once: the port takes `'static` statements.
pub(super) struct TableSql {
    pub(super) page_all: String,
    pub(super) page_public: String,
    pub(super) existing: String,
    pub(super) upsert: String,
}

pub(super) fn table_sql(index: usize) -> &'static TableSql {
    static SQL: OnceLock<Vec<TableSql>> = OnceLock::new();
    let all = SQL.get_or_init(|| {
        TABLES
            .iter()
            .map(|t| {
                let page = |cols: Vec<&str>| {
                    format!(
                        "SELECT rowid, {} FROM {} WHERE rowid > ? ORDER BY rowid LIMIT ?",
                        cols.join(", "),
                        t.name
                    )
                };
                let names = t.names(true);
                let on: Vec<String> = names[..t.pk]
                    .iter()
                    .enumerate()
                    .map(|(i, c)| format!("t.{c} = json_extract(j.value, '$[{i}]')"))
                    .collect();
                let set: Vec<String> = t
                    .cols()
                    .skip(t.pk)
                    .map(|c| {
                        if c.sticky && c.ty == Ty::Int {
                            format!("{0} = max({0}, excluded.{0})", c.name)
                        } else if c.sticky {
                            format!("{0} = COALESCE({1}.{0}, excluded.{0})", c.name, t.name)
                        } else if c.secret {
                            format!("{0} = COALESCE(excluded.{0}, {1}.{0})", c.name, t.name)
                        } else {
                            format!("{0} = excluded.{0}", c.name)
                        }
                    })
                    .collect();
                let params: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
                TableSql {
                    page_all: page(names.clone()),
                    page_public: page(t.names(false)),
                    existing: format!(
                        "SELECT {} FROM json_each(?) j JOIN {} t ON {}",
                        names
                            .iter()
                            .map(|c| format!("t.{c}"))
                            .collect::<Vec<_>>()
                            .join(", "),
                        t.name,
                        on.join(" AND ")
                    ),
                    upsert: format!(
                        "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) DO UPDATE SET {}",
                        t.name,
                        names.join(", "),
                        params.join(", "),
                        names[..t.pk].join(", "),
                        set.join(", ")
                    ),
                }
            })
            .collect()
    });
    &all[index]
}

pub(super) fn table_index(name: &str) -> Option<usize> {
    TABLES.iter().position(|t| t.name == name)
}

#[cfg(all(test, feature = "native"))]
#[allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::ports::{Sql as _, Statement};
    use crate::testing::MemoryHost;

    /// Tables of the schema that an export deliberately leaves out: short-lived or single-use
    /// values in flight (codes, recovery links), counters, and the log.
    const NOT_EXPORTED: &[&str] = &[
        "audit_events",
        "authorization_codes",
        "login_locks",
        "throttle",
        "recovery_tokens",
        "sqlite_sequence",
    ];

    fn names(host: &MemoryHost, db: Db, q: &'static str) -> Vec<String> {
        let sql = match db {
            Db::Main => &host.sql,
            Db::Credentials => &host.credentials,
        };
        futures_executor::block_on(sql.query(Statement::new(q, vec![])))
            .unwrap()
            .iter()
            .map(|r| r.text(0).unwrap().to_owned())
            .collect()
    }

    #[test]
    fn issue10_the_export_covers_every_table_and_column_of_the_schema() {
        let host = futures_executor::block_on(MemoryHost::new());
        let mut checked = 0;
        for db in [Db::Main, Db::Credentials] {
            for table in names(
                &host,
                db,
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
            ) {
                if NOT_EXPORTED.contains(&table.as_str()) {
                    continue;
                }
                let t = TABLES
                    .iter()
                    .find(|t| t.name == table && t.db == db)
                    .unwrap_or_else(|| {
                        panic!("table {table} is neither exported nor listed in NOT_EXPORTED")
                    });
                // The port takes `'static` statements; a test may leak a few.
                let stmt: &'static str = Box::leak(
                    format!("SELECT name FROM pragma_table_info('{table}')").into_boxed_str(),
                );
                let mut schema = names(&host, db, stmt);
                let mut ours: Vec<String> = t.names(true).into_iter().map(str::to_owned).collect();
                schema.sort();
                ours.sort();
                assert_eq!(ours, schema, "the columns of {table}");
                checked += 1;
            }
        }
        assert_eq!(
            checked,
            TABLES.len(),
            "every exported table is in the schema"
        );
    }
}
