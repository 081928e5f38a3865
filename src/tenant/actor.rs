//! Who acts: a user of one tenant with the role the users table gives them.

use crate::ids::{RowId, TenantId};
use crate::tenant::settings::Role;

/// A user of one tenant acting through its handle, with the role the database gave them.
///
/// Obtained from [`Tenant::actor`](crate::Tenant::actor) or
/// [`Tenant::bootstrap_admin`](crate::Tenant::bootstrap_admin), never built by hand, so a
/// role cannot be claimed without the users table agreeing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub(super) tenant: TenantId,
    pub(super) user_id: RowId,
    pub(super) role: Role,
}

impl Actor {
    /// The user.
    pub fn user_id(&self) -> RowId {
        self.user_id
    }
    /// Their role.
    pub fn role(&self) -> Role {
        self.role
    }
    /// Their tenant.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }
}
