//! A configuration reload of the LISP core (SIGHUP): Map-Server sites added, removed or
//! changed, and the EVPN feed's Instance IDs (the configured VNIs).
//!
//! Owns: re-indexing everything that names a site by position, and taking back the state a
//! removed site (or an EID taken out of a site) held.
//! Must not: touch roles, timers or sockets — those need a restart (`config::reload_plan`).
//!
//! Sites are matched by `name`:
//! - **removed**: its registrations are removed as on deregistration (subscribers get the
//!   publication, recent requesters an SMR — RFC 9437 §6, RFC 9301 §6.1), its subscriptions
//!   end with the RFC 9437 §5 ACT 5 signal, its replay-nonce entries and xTR-ID bindings are
//!   forgotten;
//! - **changed**: registrations of EIDs the site no longer covers are removed the same way;
//!   a new key or algorithm applies to the next Map-Register (a registrant still using the old
//!   key is refused and its registration times out, RFC 9301 §8.2), and to the next
//!   Map-Notify we sign;
//! - **added**: accepts Map-Registers at once.

use std::time::Instant;

use super::{ChangeCause, EidPrefix, Lisp, SiteCoreCfg};

impl Lisp {
    /// Replace the sites (`[[lisp.site]]` after a reload). `pubsub_default_site` follows
    /// `LispCoreCfg::from_config`'s rule: the only site when there is exactly one.
    pub fn set_sites(&mut self, now: Instant, mut sites: Vec<SiteCoreCfg>) {
        sites.truncate(self.cfg.limits.max_sites);
        let remap: Vec<Option<usize>> = self
            .cfg
            .sites
            .iter()
            .map(|o| sites.iter().position(|n| n.name == o.name))
            .collect();
        // registrations the new sites no longer allow, removed while the old keys still sign
        // what their removal sends
        let mut gone: Vec<(EidPrefix, u64)> = Vec::new();
        for (eid, m) in self.ms.db.iter() {
            for c in &m.contribs {
                let Some(old) = c.site else { continue };
                let allowed = remap
                    .get(old)
                    .copied()
                    .flatten()
                    .and_then(|n| sites.get(n))
                    .is_some_and(|s| s.eids.iter().any(|p| p.contains(eid)));
                if !allowed {
                    gone.push((*eid, c.serial()));
                }
            }
        }
        for (eid, serial) in gone {
            self.remove_contribution(now, eid, ChangeCause::Reconfigured, |c| {
                c.serial() == serial
            });
        }
        self.remap_subscription_sites(&remap);
        self.ms.remap_sites(&remap);
        let to = |i: usize| remap.get(i).copied().flatten();
        for (_, m) in self.ms.db.iter_mut() {
            for c in &mut m.contribs {
                c.site = c.site.and_then(to);
            }
        }
        self.cfg.pubsub_default_site = (sites.len() == 1).then_some(0);
        self.cfg.sites = sites;
    }

    /// The Instance IDs of the EVPN feed (the configured VNIs): all of their EID space is
    /// configured EID space (RFC 9301 §8.3). EIDs of a VNI that is gone leave through the
    /// feed itself (`set_mapping` with no RLOC).
    pub fn set_evpn_iids(&mut self, iids: Vec<u32>) {
        self.cfg.evpn_iids = iids;
    }
}
