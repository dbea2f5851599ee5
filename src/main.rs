//! The `vmmi` binary: command-line parsing and dispatch. Protocol logic lives in the library.
//!
//! Verbs available today: `decode`, `check`. The daemon verbs of INTERFACE.md (`run`, `demo`,
//! `show`, `explain`, `vm`, `dad`) are not built yet and are therefore absent (README "Not yet").

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
