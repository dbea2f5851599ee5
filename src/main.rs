//! The `vmmi` binary: command-line parsing and dispatch. Protocol logic lives in the library.
//!
//! Verbs: `run`, `check`, `decode`, `demo`, `show neighbors|routes|macs|vnis|moves|lisp`,
//! `explain mac`, `vm attach|detach`, `dad clear`, `lisp request`, `route announce|withdraw`,
//! `refresh`; each talks to a running daemon through its HTTP API (`--api`).

mod cli;
mod demo;
mod demo_netns;

use std::io::Read;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vmmi::config::Config;
use vmmi::decode::{DecodeOpts, Proto, decode_bytes, decode_pcap, parse_hex};
use vmmi::wire::bgp::Family;

#[derive(Parser)]
#[command(
    name = "vmmi",
    version,
    about = "BGP EVPN + LISP control plane for VM mobility"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The daemon. Without --config: the embedded default (logged at start).
    Run {
        #[arg(long)]
        config: Option<std::path::PathBuf>,
        /// Log format: human (default) or json.
        #[arg(long, default_value = "human")]
        log_format: String,
        /// Start as a restarting speaker (RFC 4724 R bit; our routes are held back until
        /// every peer's End-of-RIB or the Restart Time), like FRR's `bgpd -K`. Use it when
        /// restarting a running vmmi.
        #[arg(long)]
        graceful_restart: bool,
    },
    /// A VM moving between two data centers: vmmi speakers in this process on loopback (two
    /// VTEPs, a DC gateway that is also the LISP Map-Server, an ITR; real BGP and LISP), a
    /// timeline with each step's time.
    Demo {
        /// Real kernel VXLAN in network namespaces (root): three hosts, a ping across the move.
        #[arg(long)]
        netns: bool,
    },
    /// State of a running daemon: neighbors, routes, macs, vnis, moves or lisp.
    Show {
        /// neighbors | routes | macs | vnis | moves | lisp
        what: String,
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = "127.0.0.1:50179")]
        api: std::net::SocketAddr,
        /// routes: evpn | ipv4 | ipv6
        #[arg(long)]
        family: Option<String>,
        /// routes, macs: only this VNI
        #[arg(long)]
        vni: Option<u32>,
    },
    /// Why a MAC is where it is: claims, sequences, the deciding rule, DAD state, dataplane.
    Explain {
        /// mac
        what: String,
        mac: String,
        #[arg(long)]
        vni: u32,
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = "127.0.0.1:50179")]
        api: std::net::SocketAddr,
    },
    /// Orchestrator hook: a VM appears on (attach) or leaves (detach) this VTEP — the same
    /// path as a MAC the dataplane learns.
    Vm {
        /// attach | detach
        action: String,
        #[arg(long)]
        vni: u32,
        #[arg(long)]
        mac: String,
        #[arg(long)]
        ip: Option<std::net::IpAddr>,
        /// attach: a static MAC that never moves by learning (RFC 7432 §15.2)
        #[arg(long)]
        sticky: bool,
        #[arg(long, default_value = "127.0.0.1:50179")]
        api: std::net::SocketAddr,
    },
    /// Duplicate-address detection: `dad clear` lifts a freeze.
    Dad {
        /// clear
        action: String,
        #[arg(long)]
        vni: u32,
        #[arg(long)]
        mac: String,
        #[arg(long, default_value = "127.0.0.1:50179")]
        api: std::net::SocketAddr,
    },
    /// LISP: `lisp request EID` makes the xTR resolve an EID through its Map-Resolver (and,
    /// with --subscribe, subscribe to it, RFC 9437) and prints the map-cache entry, like `lig`.
    Lisp {
        /// request
        action: String,
        /// `10.1.0.42/32`, `mac:02:00:00:00:00:42` or `iid:N ...`
        eid: String,
        /// Instance-ID (the VNI) when EID has no `iid:` prefix
        #[arg(long, default_value_t = 0)]
        iid: u32,
        #[arg(long)]
        subscribe: bool,
        /// Seconds to wait for the answer
        #[arg(long, default_value_t = 3.0)]
        wait: f64,
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = "127.0.0.1:50179")]
        api: std::net::SocketAddr,
    },
    /// Announce or withdraw a route by hand (like `gobgp global rib add`). SPEC is JSON, e.g.
    /// '{"type":"macip","rd":"192.0.2.1:100","mac":"52:54:00:00:00:01","ip":"10.1.0.5","vni":100,"rt":["65001:100"],"seq":1,"next_hop":"192.0.2.1"}'
    /// Types: macip, multicast, prefix, unicast.
    Route {
        /// announce | withdraw
        action: String,
        spec: String,
        #[arg(long, default_value = "127.0.0.1:50179")]
        api: std::net::SocketAddr,
    },
    /// Ask a neighbor to re-send a family (ROUTE-REFRESH, RFC 2918 / RFC 7313).
    Refresh {
        neighbor: String,
        /// evpn | ipv4 | ipv6
        #[arg(long, default_value = "evpn")]
        family: String,
        #[arg(long, default_value = "127.0.0.1:50179")]
        api: std::net::SocketAddr,
    },
    /// Decode raw BGP or LISP messages to JSON (one object per message, with its RFC 7606 /
    /// LISP validity verdict). Input: --hex, --pcap, or hex on stdin ("-" or nothing).
    Decode {
        /// Hex of one or more back-to-back BGP messages, or one LISP message.
        #[arg(long, conflicts_with = "pcap")]
        hex: Option<String>,
        /// A pcap/pcapng capture: BGP on TCP 179 (reassembled), LISP on UDP 4342.
        #[arg(long)]
        pcap: Option<std::path::PathBuf>,
        /// Read hex from stdin.
        #[arg(value_name = "-", conflicts_with_all = ["hex", "pcap"])]
        stdin: Option<String>,
        /// Protocol (guessed from the BGP marker when omitted).
        #[arg(long, value_enum)]
        proto: Option<Proto>,
        /// Decode AS numbers as 2 octets when no OPEN pair was seen (default: 4-octet, RFC 6793).
        #[arg(long)]
        two_octet_as: bool,
        /// Families whose NLRI carry ADD-PATH path identifiers (ipv4-unicast, ipv6-unicast,
        /// l2vpn-evpn), when no OPEN pair was seen.
        #[arg(long, value_delimiter = ',')]
        add_path: Vec<String>,
        /// Validate as iBGP (LOCAL_PREF, ORIGINATOR_ID, CLUSTER_LIST allowed) when no OPEN pair was seen.
        #[arg(long)]
        ibgp: bool,
        /// TCP port carrying BGP in the capture.
        #[arg(long, default_value_t = 179)]
        bgp_port: u16,
        /// UDP port carrying LISP control in the capture.
        #[arg(long, default_value_t = 4342)]
        lisp_port: u16,
        /// LISP pre-shared key: verify Map-Register/Map-Notify/Map-Notify-Ack authentication
        /// (RFC 9301 §5.6) and report it in the verdict.
        #[arg(long, env = "VMMI_LISP_KEY", hide_env_values = true)]
        lisp_key: Option<String>,
        /// Pretty-print each JSON object.
        #[arg(long)]
        pretty: bool,
    },
    /// Validate a config file (with VMMI_SECTION__KEY environment overrides applied): print
    /// `ok: FILE (...)` and exit 0, or every error as `FILE: key: reason` and exit 1.
    Check {
        /// The TOML config file.
        #[arg(long)]
        config: std::path::PathBuf,
    },
}

/// `vmmi check`: the report goes to stdout (it is the command's output, errors included).
fn check(path: &std::path::Path) -> ExitCode {
    match Config::load(Some(path)) {
        Ok(c) => {
            for w in c.warnings() {
                println!("{}: warning: {w}", path.display());
            }
            println!(
                "ok: {} ({} neighbors, {} VNIs, {} LISP sites)",
                path.display(),
                c.neighbor.len(),
                c.vni.len(),
                c.lisp.site.len()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in errors {
                println!("{}: {e}", path.display());
            }
            ExitCode::FAILURE
        }
    }
}

fn family(s: &str) -> Result<Family, String> {
    match s {
        "ipv4-unicast" => Ok(Family::IPV4_UNICAST),
        "ipv6-unicast" => Ok(Family::IPV6_UNICAST),
        "l2vpn-evpn" => Ok(Family::L2VPN_EVPN),
        other => Err(format!(
            "--add-path: unknown family {other:?}: expected ipv4-unicast, ipv6-unicast or l2vpn-evpn"
        )),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Check { config } => check(&config),
        Cmd::Run {
            config,
            log_format,
            graceful_restart,
        } => match log_format.as_str() {
            "human" | "json" => cli::run(config, log_format == "json", graceful_restart),
            other => {
                eprintln!("vmmi run: --log-format {other:?}: expected human or json");
                ExitCode::from(2)
            }
        },
        Cmd::Show {
            what,
            json,
            api,
            family,
            vni,
        } => cli::show(&what, json, api, family.as_deref(), vni),
        Cmd::Demo { netns: false } => demo::run(),
        Cmd::Demo { netns: true } => demo_netns::run(),
        Cmd::Explain {
            what,
            mac,
            vni,
            json,
            api,
        } => match what.as_str() {
            "mac" => cli::explain_mac(&mac, vni, json, api),
            other => {
                eprintln!("vmmi explain: {other:?}: expected mac");
                ExitCode::from(2)
            }
        },
        Cmd::Vm {
            action,
            vni,
            mac,
            ip,
            sticky,
            api,
        } => match action.as_str() {
            "attach" | "detach" => cli::vm(&action, vni, &mac, ip, sticky, api),
            other => {
                eprintln!("vmmi vm: {other:?}: expected attach or detach");
                ExitCode::from(2)
            }
        },
        Cmd::Dad {
            action,
            vni,
            mac,
            api,
        } => match action.as_str() {
            "clear" => cli::dad_clear(vni, &mac, api),
            other => {
                eprintln!("vmmi dad: {other:?}: expected clear");
                ExitCode::from(2)
            }
        },
        Cmd::Lisp {
            action,
            eid,
            iid,
            subscribe,
            wait,
            json,
            api,
        } => match action.as_str() {
            "request" => match std::time::Duration::try_from_secs_f64(wait) {
                Ok(w) => cli::lisp_request(&eid, iid, subscribe, w, json, api),
                Err(_) => {
                    eprintln!("vmmi lisp request: --wait {wait}: not a duration in seconds");
                    ExitCode::from(2)
                }
            },
            other => {
                eprintln!("vmmi lisp: {other:?}: expected request");
                ExitCode::from(2)
            }
        },
        Cmd::Route { action, spec, api } => match action.as_str() {
            "announce" | "withdraw" => cli::route(&action, &spec, api),
            other => {
                eprintln!("vmmi route: {other:?}: expected announce or withdraw");
                ExitCode::from(2)
            }
        },
        Cmd::Refresh {
            neighbor,
            family,
            api,
        } => cli::refresh(&neighbor, &family, api),
        Cmd::Decode {
            hex,
            pcap,
            stdin,
            proto,
            two_octet_as,
            add_path,
            ibgp,
            bgp_port,
            lisp_port,
            lisp_key,
            pretty,
        } => {
            let add_path = match add_path
                .iter()
                .map(|s| family(s))
                .collect::<Result<Vec<_>, _>>()
            {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("vmmi decode: {e}");
                    return ExitCode::from(2);
                }
            };
            let opts = DecodeOpts {
                proto,
                four_octet_as: !two_octet_as,
                add_path,
                ibgp,
                tcp_port: bgp_port,
                udp_port: lisp_port,
                lisp_key: lisp_key.map(String::into_bytes),
            };
            let result = if let Some(path) = pcap {
                std::fs::read(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))
                    .and_then(|b| {
                        decode_pcap(&b, &opts).map_err(|e| format!("{}: {e}", path.display()))
                    })
            } else {
                let text = match (hex, stdin) {
                    (Some(h), _) => Ok(h),
                    (None, Some(s)) if s != "-" => Err(format!(
                        "unexpected argument {s:?}: use --hex HEX, --pcap FILE or - for stdin"
                    )),
                    _ => {
                        let mut s = String::new();
                        std::io::stdin()
                            .read_to_string(&mut s)
                            .map(|_| s)
                            .map_err(|e| format!("cannot read stdin: {e}"))
                    }
                };
                text.and_then(|t| {
                    // one message set per non-empty line
                    let mut out = Vec::new();
                    for (i, line) in t.lines().filter(|l| !l.trim().is_empty()).enumerate() {
                        let bytes = parse_hex(line).map_err(|e| format!("line {}: {e}", i + 1))?;
                        out.extend(decode_bytes(&bytes, &opts));
                    }
                    Ok(out)
                })
            };
            match result {
                Ok(objs) => {
                    for o in objs {
                        let s = if pretty {
                            serde_json::to_string_pretty(&o)
                        } else {
                            serde_json::to_string(&o)
                        };
                        println!("{}", s.unwrap_or_default());
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("vmmi decode: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
