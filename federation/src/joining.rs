//! Invitations and joining: founding a federation, issuing single-use invitations, and
//! redeeming one at the inviter.

use std::time::Duration;

use chrono::Utc;
use urbanmesh_protocol::federation::{
    Invitation, JoinConsent, MemberRecord, MemberStatus, Request, Response, decode_invitation, encode_invitation,
};
use urbanmesh_protocol::membership::{Membership, check_name};
use urbanmesh_protocol::{Multiaddr, PeerId, ProtocolError};

use crate::FederationError;
use crate::service::{Federation, FederationStatus, multiaddrs, refused_first};
use crate::state::{FederationStore, IssuedInvitation};

/// Attempts, and the pause between them, for a request whose dial failed.
const DIAL_TRIES: u32 = 3;
const DIAL_PAUSE: Duration = Duration::from_millis(200);

impl Federation {
    /// Issues a single-use invitation, founding a federation named `federation_name`
    /// first if this node is in none.
    pub async fn invite(
        &self,
        federation_name: Option<&str>,
        invitee: Option<String>,
        ttl: Duration,
    ) -> Result<String, FederationError> {
        if !self.is_member() {
            self.found(federation_name.unwrap_or(&format!("Verbund {}", self.inner.profile.name))).await?;
        }
        let (id, name) = {
            let membership = self.membership();
            let (id, name) = membership.federation().ok_or(FederationError::NotMember)?;
            (id.to_owned(), name.to_owned())
        };
        let expires = Utc::now().timestamp() + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2);
        let invitation = Invitation {
            federation: id,
            federation_name: name,
            inviter: self.inner.me.clone(),
            inviter_name: self.inner.profile.name.clone(),
            addresses: self.inner.profile.addresses.clone(),
            invitee: invitee.clone(),
            nonce: random_hex(16),
            expires,
        };
        self.inner.store.issue(&invitation.nonce, &IssuedInvitation { invitee, expires, redeemed_by: None })?;
        self.inner.store.flush().await?;
        Ok(encode_invitation(&self.inner.identity.sign(&invitation)?)?)
    }

    /// Founds a federation named `name`, with this node its first member.
    pub async fn found(&self, name: &str) -> Result<(), FederationError> {
        if let Some((_, current)) = self.membership().federation() {
            return Err(FederationError::AlreadyMember(current.to_owned()));
        }
        let record = self.own_record(&random_hex(8), name, MemberStatus::Admitted)?;
        let signed = self.inner.identity.sign(&record)?;
        refused_first(self.apply_records(&[signed]).await?)?;
        tracing::info!(federation = %name, "founded a federation");
        Ok(())
    }

    /// A statement about this node, dated after every earlier one about it (even when the
    /// clock went back since), so that it is never stale.
    pub(crate) fn own_record(
        &self,
        federation: &str,
        federation_name: &str,
        status: MemberStatus,
    ) -> Result<MemberRecord, FederationError> {
        let profile = &self.inner.profile;
        let at = self.next_time(&self.inner.me)?;
        Ok(MemberRecord {
            federation: federation.to_owned(),
            federation_name: federation_name.to_owned(),
            member: self.inner.me.clone(),
            name: profile.name.clone(),
            status,
            by: self.inner.me.clone(),
            at,
            addresses: profile.addresses.clone(),
            http: profile.http.clone(),
            flight: profile.flight.clone(),
            peer_flight: profile.peer_flight.clone(),
            consent: None,
        })
    }

    /// The time for a new statement about `member`: now, or just after the latest one.
    pub(crate) fn next_time(&self, member: &str) -> Result<i64, FederationError> {
        let now = Utc::now().timestamp_millis();
        let Some(latest) = self.membership().get(member).map(|m| m.record.at) else { return Ok(now) };
        let after = latest.checked_add(1).ok_or_else(|| FederationError::Corrupt(format!("time of {member}")))?;
        Ok(now.max(after))
    }

    /// Redeems an invitation at its inviter and becomes a member.
    pub async fn join(&self, text: &str) -> Result<FederationStatus, FederationError> {
        let (inviter, invitation) = check_invitation(text)?;
        if let Some((id, _)) = self.membership().federation()
            && self.membership().is_member(&self.inner.me)
        {
            return Err(FederationError::AlreadyMember(id.to_owned()));
        }
        let profile = &self.inner.profile;
        check_name(&profile.name).map_err(|e| FederationError::Refused(e.to_string()))?;
        let addresses = multiaddrs(&invitation.addresses);
        let consent = self.inner.identity.sign(&JoinConsent {
            federation: invitation.federation.clone(),
            member: self.inner.me.clone(),
            inviter: invitation.inviter.clone(),
            nonce: invitation.nonce.clone(),
            at: Utc::now().timestamp_millis(),
        })?;
        let request = Request::Join {
            invitation: decode_invitation(text)?,
            consent,
            name: profile.name.clone(),
            addresses: profile.addresses.clone(),
            http: profile.http.clone(),
            flight: profile.flight.clone(),
            peer_flight: profile.peer_flight.clone(),
        };
        let members = match self.request_with_retries(inviter, addresses, request).await? {
            Response::Joined { members } => members,
            Response::Refused { reason } => return Err(FederationError::Invitation(reason)),
            Response::NameTaken { name } => {
                return Err(FederationError::NameTaken { name, federation: invitation.federation_name });
            }
            other => return Err(FederationError::Refused(format!("unexpected answer {other:?}"))),
        };
        let mut candidate = Membership::default();
        candidate.apply_all(&members);
        if candidate.federation().map(|(id, _)| id) != Some(invitation.federation.as_str())
            || !candidate.is_member(&self.inner.me)
        {
            return Err(FederationError::Refused("the inviter's answer does not make this node a member".into()));
        }
        self.apply_records(&members).await?;
        tracing::info!(federation = %invitation.federation_name, inviter = %invitation.inviter_name, "joined");
        let peers: Vec<String> = self.membership().admitted().map(|m| m.record.member.clone()).collect();
        for peer in peers.into_iter().filter(|p| *p != self.inner.me) {
            tokio::spawn(self.clone().sync_with(peer));
        }
        Ok(self.status().await)
    }

    /// A request that survives a failed dial or two (a simultaneous dial from the other
    /// side, a listener that is just coming up).
    async fn request_with_retries(
        &self,
        peer: PeerId,
        addresses: Vec<Multiaddr>,
        request: Request,
    ) -> Result<Response, FederationError> {
        let mut tries = 0;
        loop {
            tries += 1;
            match self.inner.client.request(peer, addresses.clone(), request.clone()).await {
                Err(ProtocolError::Unreachable { .. }) if tries < DIAL_TRIES => {
                    tokio::time::sleep(DIAL_PAUSE).await;
                }
                answer => return Ok(answer?),
            }
        }
    }
}

/// Decodes an invitation and checks its signature and expiry (not its single use,
/// which only the inviter knows).
pub fn check_invitation(text: &str) -> Result<(PeerId, Invitation), FederationError> {
    let signed = decode_invitation(text).map_err(|e| FederationError::Invitation(e.to_string()))?;
    let (signer, invitation): (PeerId, Invitation) =
        signed.open().map_err(|e| FederationError::Invitation(e.to_string()))?;
    if signer.to_string() != invitation.inviter {
        return Err(FederationError::Invitation("it is not signed by the inviter it names".into()));
    }
    if invitation.expires < Utc::now().timestamp() {
        return Err(FederationError::Invitation("it has expired".into()));
    }
    Ok((signer, invitation))
}

/// Keeps an invitation to be redeemed when the node next starts (`urbanmesh join` on a
/// stopped node).
pub fn join_on_next_start(db: sled::Db, text: &str) -> Result<Invitation, FederationError> {
    let (_, invitation) = check_invitation(text)?;
    let store = FederationStore::open(db)?;
    store.set_pending_join(Some(text.trim()))?;
    Ok(invitation)
}

fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    // The OS random source does not fail on the platforms we run on; a zero nonce
    // would still be single-use through the issued-invitation record.
    let _ = getrandom::fill(&mut buffer);
    hex::encode(buffer)
}
