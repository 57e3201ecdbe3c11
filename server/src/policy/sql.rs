//! [`RoomStore`] on SQLite and on PostgreSQL: the same statements (sqlx
//! binds `$1`-style parameters on both), written once and instantiated for
//! each pool. Every transaction starts with a write, so on SQLite it takes
//! the file's write lock first (waiting its turn behind the history's
//! writer) instead of failing to upgrade a read.

use async_trait::async_trait;

use super::rules::{Party, Standing};
use super::store::{
    Accepted, AuditEntry, Member, NewBan, NewInvite, RoomOfUser, RoomStore, StoredBan, StoredInvite, StoredReport,
    ban_target,
};
use crate::accounts::store::UserId;
use crate::store::StoreError;
use chat_shared::api::Role;

macro_rules! room_store {
    ($(#[$doc:meta])* $store:ident, $pool:ty) => {
        $(#[$doc])*
        pub struct $store {
            pool: $pool,
        }

        impl $store {
            /// Rooms kept through `pool` (whose schema the history store migrated).
            pub fn new(pool: $pool) -> Self {
                Self { pool }
            }
        }

        #[async_trait]
        impl RoomStore for $store {
            async fn create_room(
                &self,
                name: &str,
                private: bool,
                owner: UserId,
                now_ms: i64,
            ) -> Result<bool, StoreError> {
                let mut transaction = self.pool.begin().await?;
                let created = sqlx::query(
                    "INSERT INTO created_rooms (name, private, owner_id, created_ms) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(name)
                .bind(private)
                .bind(owner)
                .bind(now_ms)
                .execute(&mut *transaction)
                .await?
                .rows_affected();
                if created == 0 {
                    return Ok(false);
                }
                sqlx::query("INSERT INTO room_members (room, user_id, role, joined_ms) VALUES ($1, $2, $3, $4)")
                    .bind(name)
                    .bind(owner)
                    .bind(Role::Owner.as_str())
                    .bind(now_ms)
                    .execute(&mut *transaction)
                    .await?;
                transaction.commit().await?;
                Ok(true)
            }

            async fn standing(&self, room: &str, party: Party, now_ms: i64) -> Result<Standing, StoreError> {
                let user = match party {
                    Party::User(id) => Some(id),
                    Party::Anyone | Party::Address(_) => None,
                };
                type Row = (Option<bool>, Option<String>, Option<i64>, Option<i64>, bool, bool);
                let (private, role, slow_mode, banned_until, has_bans, admin): Row = sqlx::query_as(
                    "SELECT \
                     (SELECT private FROM created_rooms WHERE name = $1), \
                     (SELECT role FROM room_members WHERE room = $1 AND user_id = $2), \
                     (SELECT slow_mode_secs FROM room_settings WHERE room = $1), \
                     (SELECT MAX(COALESCE(until_ms, $5)) FROM room_bans WHERE room = $1 AND target = $3 \
                         AND (until_ms IS NULL OR until_ms > $4)), \
                     EXISTS (SELECT 1 FROM room_bans WHERE room = $1 AND (until_ms IS NULL OR until_ms > $4)), \
                     EXISTS (SELECT 1 FROM server_admins WHERE user_id = $2)",
                )
                .bind(room)
                .bind(user)
                .bind(ban_target(party))
                .bind(now_ms)
                .bind(i64::MAX)
                .fetch_one(&self.pool)
                .await?;
                Ok(Standing {
                    created: private.is_some(),
                    private: private.unwrap_or(false),
                    role: role.as_deref().map(Role::from_name),
                    banned: banned_until.is_some(),
                    banned_until_ms: banned_until,
                    has_bans,
                    slow_mode_secs: slow_mode.map_or(0, |seconds| u32::try_from(seconds).unwrap_or(u32::MAX)),
                    admin,
                })
            }

            async fn private_rooms(&self) -> Result<Vec<String>, StoreError> {
                Ok(sqlx::query_scalar("SELECT name FROM created_rooms WHERE private").fetch_all(&self.pool).await?)
            }

            async fn rooms_of(&self, user: UserId) -> Result<Vec<RoomOfUser>, StoreError> {
                let rows: Vec<(String, bool, String)> = sqlx::query_as(
                    "SELECT created_rooms.name, created_rooms.private, room_members.role FROM room_members \
                     JOIN created_rooms ON created_rooms.name = room_members.room WHERE room_members.user_id = $1 ORDER BY created_rooms.name",
                )
                .bind(user)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(|(name, private, role)| RoomOfUser { name, private, role: Role::from_name(&role) }).collect())
            }

            async fn members(&self, room: &str, limit: i64) -> Result<Vec<Member>, StoreError> {
                let rows: Vec<(i64, String, String)> = sqlx::query_as(
                    "SELECT users.id, users.name, room_members.role FROM room_members \
                     JOIN users ON users.id = room_members.user_id WHERE room_members.room = $1 \
                     ORDER BY users.name LIMIT $2",
                )
                .bind(room)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(|(user, name, role)| Member { user, name, role: Role::from_name(&role) }).collect())
            }

            async fn remove_member(&self, room: &str, user: UserId) -> Result<bool, StoreError> {
                let removed = sqlx::query("DELETE FROM room_members WHERE room = $1 AND user_id = $2 AND role <> $3")
                    .bind(room)
                    .bind(user)
                    .bind(Role::Owner.as_str())
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                Ok(removed > 0)
            }

            async fn create_invite(&self, invite: NewInvite<'_>) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar(
                    "INSERT INTO room_invites (code_hash, room, created_by, created_ms, expires_ms, uses_left) \
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                )
                .bind(invite.code_hash)
                .bind(invite.room)
                .bind(invite.created_by)
                .bind(invite.now_ms)
                .bind(invite.expires_ms)
                .bind(invite.uses)
                .fetch_one(&self.pool)
                .await?)
            }

            async fn accept_invite(&self, code_hash: &str, user: UserId, now_ms: i64) -> Result<Accepted, StoreError> {
                let mut transaction = self.pool.begin().await?;
                // A member already in the room spends no use of the link.
                let room: Option<String> = sqlx::query_scalar(
                    "UPDATE room_invites SET uses_left = uses_left - 1 \
                     WHERE code_hash = $1 AND (uses_left IS NULL OR uses_left > 0) \
                     AND (expires_ms IS NULL OR expires_ms > $2) \
                     AND NOT EXISTS (SELECT 1 FROM room_members \
                         WHERE room_members.room = room_invites.room AND room_members.user_id = $3) \
                     RETURNING room",
                )
                .bind(code_hash)
                .bind(now_ms)
                .bind(user)
                .fetch_optional(&mut *transaction)
                .await?;
                if let Some(room) = room {
                    sqlx::query(
                        "INSERT INTO room_members (room, user_id, role, joined_ms) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(&room)
                    .bind(user)
                    .bind(Role::Member.as_str())
                    .bind(now_ms)
                    .execute(&mut *transaction)
                    .await?;
                    transaction.commit().await?;
                    return Ok(Accepted::Joined(room));
                }
                transaction.rollback().await?;
                let member_of: Option<String> = sqlx::query_scalar(
                    "SELECT room_invites.room FROM room_invites JOIN room_members \
                     ON room_members.room = room_invites.room AND room_members.user_id = $2 \
                     WHERE room_invites.code_hash = $1 AND (room_invites.expires_ms IS NULL OR room_invites.expires_ms > $3)",
                )
                .bind(code_hash)
                .bind(user)
                .bind(now_ms)
                .fetch_optional(&self.pool)
                .await?;
                Ok(member_of.map_or(Accepted::Invalid, Accepted::AlreadyMember))
            }

            async fn invites(&self, room: &str, now_ms: i64) -> Result<Vec<StoredInvite>, StoreError> {
                let rows: Vec<(i64, String, Option<i64>, Option<i64>)> = sqlx::query_as(
                    "SELECT room_invites.id, users.name, room_invites.expires_ms, room_invites.uses_left \
                     FROM room_invites JOIN users ON users.id = room_invites.created_by \
                     WHERE room_invites.room = $1 AND (room_invites.uses_left IS NULL OR room_invites.uses_left > 0) \
                     AND (room_invites.expires_ms IS NULL OR room_invites.expires_ms > $2) ORDER BY room_invites.id",
                )
                .bind(room)
                .bind(now_ms)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, created_by, expires_ms, uses_left)| StoredInvite { id, created_by, expires_ms, uses_left })
                    .collect())
            }

            async fn revoke_invite(&self, room: &str, id: i64) -> Result<bool, StoreError> {
                let revoked = sqlx::query("DELETE FROM room_invites WHERE room = $1 AND id = $2")
                    .bind(room)
                    .bind(id)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                Ok(revoked > 0)
            }

            async fn set_role(&self, room: &str, user: UserId, role: Role, now_ms: i64) -> Result<bool, StoreError> {
                let changed = sqlx::query(
                    "INSERT INTO room_members (room, user_id, role, joined_ms) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (room, user_id) DO UPDATE SET role = excluded.role WHERE room_members.role <> $5",
                )
                .bind(room)
                .bind(user)
                .bind(role.as_str())
                .bind(now_ms)
                .bind(Role::Owner.as_str())
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(changed > 0)
            }

            async fn set_slow_mode(&self, room: &str, seconds: u32) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO room_settings (room, slow_mode_secs) VALUES ($1, $2) \
                     ON CONFLICT (room) DO UPDATE SET slow_mode_secs = excluded.slow_mode_secs",
                )
                .bind(room)
                .bind(i64::from(seconds))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn ban(&self, ban: NewBan<'_>) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO room_bans (room, target, label, until_ms, by_user, created_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (room, target) DO UPDATE \
                     SET label = excluded.label, until_ms = excluded.until_ms, by_user = excluded.by_user, \
                     created_ms = excluded.created_ms",
                )
                .bind(ban.room)
                .bind(ban.target)
                .bind(ban.label)
                .bind(ban.until_ms)
                .bind(ban.by)
                .bind(ban.now_ms)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn unban(&self, room: &str, target: &str) -> Result<bool, StoreError> {
                let lifted = sqlx::query("DELETE FROM room_bans WHERE room = $1 AND target = $2")
                    .bind(room)
                    .bind(target)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                Ok(lifted > 0)
            }

            async fn bans(&self, room: &str, now_ms: i64) -> Result<Vec<StoredBan>, StoreError> {
                let rows: Vec<(String, String, Option<i64>)> = sqlx::query_as(
                    "SELECT target, label, until_ms FROM room_bans \
                     WHERE room = $1 AND (until_ms IS NULL OR until_ms > $2) ORDER BY created_ms",
                )
                .bind(room)
                .bind(now_ms)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(|(target, label, until_ms)| StoredBan { target, label, until_ms }).collect())
            }

            async fn all_bans(&self, now_ms: i64) -> Result<Vec<(String, StoredBan)>, StoreError> {
                let rows: Vec<(String, String, String, Option<i64>)> = sqlx::query_as(
                    "SELECT room, target, label, until_ms FROM room_bans WHERE until_ms IS NULL OR until_ms > $1",
                )
                .bind(now_ms)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(room, target, label, until_ms)| (room, StoredBan { target, label, until_ms }))
                    .collect())
            }

            async fn report(
                &self,
                room: &str,
                message_id: i64,
                reporter: &str,
                reason: &str,
                now_ms: i64,
            ) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar(
                    "INSERT INTO reports (room, message_id, reporter, reason, status, created_ms) \
                     VALUES ($1, $2, $3, $4, 'open', $5) RETURNING id",
                )
                .bind(room)
                .bind(message_id)
                .bind(reporter)
                .bind(reason)
                .bind(now_ms)
                .fetch_one(&self.pool)
                .await?)
            }

            async fn reports(&self, room: &str, open_only: bool, limit: i64) -> Result<Vec<StoredReport>, StoreError> {
                let rows: Vec<(i64, i64, String, String, String, i64)> = sqlx::query_as(
                    "SELECT id, message_id, reporter, reason, status, created_ms FROM reports \
                     WHERE room = $1 AND (status = 'open' OR NOT $2) ORDER BY id DESC LIMIT $3",
                )
                .bind(room)
                .bind(open_only)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, message_id, reporter, reason, status, created_ms)| StoredReport {
                        id,
                        message_id,
                        reporter,
                        reason,
                        status,
                        created_ms,
                    })
                    .collect())
            }

            async fn close_report(&self, room: &str, id: i64, status: &str, by: &str, now_ms: i64) -> Result<bool, StoreError> {
                let closed = sqlx::query(
                    "UPDATE reports SET status = $3, closed_by = $4, closed_ms = $5 \
                     WHERE room = $1 AND id = $2 AND status = 'open'",
                )
                .bind(room)
                .bind(id)
                .bind(status)
                .bind(by)
                .bind(now_ms)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(closed > 0)
            }

            async fn resolve_reports_of(&self, room: &str, message_id: i64, by: &str, now_ms: i64) -> Result<u64, StoreError> {
                Ok(sqlx::query(
                    "UPDATE reports SET status = 'resolved', closed_by = $3, closed_ms = $4 \
                     WHERE room = $1 AND message_id = $2 AND status = 'open'",
                )
                .bind(room)
                .bind(message_id)
                .bind(by)
                .bind(now_ms)
                .execute(&self.pool)
                .await?
                .rows_affected())
            }

            async fn open_reports_by(&self, room: &str, reporter: &str) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar(
                    "SELECT COUNT(*) FROM reports WHERE room = $1 AND reporter = $2 AND status = 'open'",
                )
                .bind(room)
                .bind(reporter)
                .fetch_one(&self.pool)
                .await?)
            }

            async fn grant_admin(&self, user: UserId, now_ms: i64) -> Result<(), StoreError> {
                sqlx::query("INSERT INTO server_admins (user_id, granted_ms) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(user)
                    .bind(now_ms)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn record(&self, entry: &AuditEntry) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO audit_log (room, actor, action, target, detail, at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&entry.room)
                .bind(&entry.actor)
                .bind(&entry.action)
                .bind(&entry.target)
                .bind(&entry.detail)
                .bind(entry.at_ms)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn audit_log(&self, room: &str, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
                let rows: Vec<(String, String, String, String, String, i64)> = sqlx::query_as(
                    "SELECT room, actor, action, target, detail, at_ms FROM audit_log WHERE room = $1 \
                     ORDER BY id DESC LIMIT $2",
                )
                .bind(room)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(room, actor, action, target, detail, at_ms)| AuditEntry { room, actor, action, target, detail, at_ms })
                    .collect())
            }

            async fn close(&self) {
                self.pool.close().await;
            }
        }
    };
}

room_store!(
    /// Created rooms in the SQLite file of the history (one process).
    SqliteRooms,
    sqlx::SqlitePool
);
room_store!(
    /// Created rooms in the PostgreSQL database of the history (several nodes).
    PostgresRooms,
    sqlx::PgPool
);
