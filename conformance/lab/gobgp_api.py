#!/usr/bin/python3
"""Add or withdraw one EVPN route through gobgpd's gRPC API (GoBGP 3.x).

Used by capture-vectors.sh for what the `gobgp` CLI of 3.10 cannot express: the MAC Mobility
extended community (sequence number, sticky flag) and a MAC-only type-2 without an IP.
Stubs are generated once from the .proto files of Debian's golang-github-osrg-gobgp-dev
(needs python3-grpcio python3-grpc-tools); run it inside the namespace where gobgpd's API listens:

  ip netns exec NS /usr/bin/python3 gobgp_api.py macadv --mac 02:aa:00:00:00:07 --ip 10.100.0.17 --mm-seq 7
  ip netns exec NS /usr/bin/python3 gobgp_api.py macadv --mac 02:aa:00:00:00:08 --mm-seq 0 --sticky
  ip netns exec NS /usr/bin/python3 gobgp_api.py macadv --mac 02:aa:00:00:00:07 --ip 10.100.0.17 --withdraw
"""
import argparse
import ipaddress
import os
import subprocess
import sys

PROTO_DIR = os.environ.get("GOBGP_PROTO_DIR", "/usr/share/gocode/src/github.com/osrg/gobgp/api")
GEN_DIR = os.environ.get("GOBGP_STUB_DIR", "/tmp/vmmi-gobgp-stubs")


def load_stubs():
    if not os.path.exists(os.path.join(GEN_DIR, "gobgp_pb2_grpc.py")):
        os.makedirs(GEN_DIR, exist_ok=True)
        protos = [os.path.join(PROTO_DIR, p) for p in ("gobgp.proto", "attribute.proto", "capability.proto")]
        subprocess.check_call([sys.executable, "-m", "grpc_tools.protoc", "-I" + PROTO_DIR, "-I/usr/include",
                               "--python_out=" + GEN_DIR, "--grpc_python_out=" + GEN_DIR] + protos,
                              timeout=120)
    sys.path.insert(0, GEN_DIR)


load_stubs()
import grpc  # noqa: E402
from google.protobuf.any_pb2 import Any  # noqa: E402
import attribute_pb2 as attr  # noqa: E402
import gobgp_pb2 as gobgp  # noqa: E402
import gobgp_pb2_grpc  # noqa: E402

EVPN = gobgp.Family(afi=gobgp.Family.AFI_L2VPN, safi=gobgp.Family.SAFI_EVPN)


def anyof(msg):
    a = Any()
    a.Pack(msg)
    return a


def rd_any(rd):
    admin, assigned = rd.split(":")
    if "." in admin:
        return anyof(attr.RouteDistinguisherIPAddress(admin=admin, assigned=int(assigned)))
    return anyof(attr.RouteDistinguisherTwoOctetASN(admin=int(admin), assigned=int(assigned)))


def rt_any(rt):
    asn, val = rt.split(":")
    return anyof(attr.TwoOctetAsSpecificExtended(is_transitive=True, sub_type=0x02, asn=int(asn),
                                                 local_admin=int(val)))


def build_path(a):
    ecs = [rt_any(a.rt), anyof(attr.EncapExtended(tunnel_type=8))]  # 8 = VXLAN (RFC 9012)
    # GoBGP checks the MAC Mobility seq on withdraws too; withdraws match by NLRI, so leave it out there.
    if a.mm_seq is not None and not a.withdraw:
        ecs.append(anyof(attr.MacMobilityExtended(is_sticky=a.sticky, sequence_num=a.mm_seq)))
    rd = rd_any(a.rd)
    esi = attr.EthernetSegmentIdentifier(type=0, value=bytes(9))
    nlri = anyof(attr.EVPNMACIPAdvertisementRoute(rd=rd, esi=esi, ethernet_tag=a.etag, mac_address=a.mac,
                                                  ip_address=a.ip or "", labels=[a.label]))
    pattrs = [anyof(attr.OriginAttribute(origin=0)),
              anyof(attr.ExtendedCommunitiesAttribute(communities=ecs)),
              anyof(attr.MpReachNLRIAttribute(family=EVPN, next_hops=[a.nexthop], nlris=[nlri]))]
    return gobgp.Path(nlri=nlri, pattrs=pattrs, family=EVPN, is_withdraw=a.withdraw)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["macadv"])
    ap.add_argument("--api", default="127.0.0.1:50051")
    ap.add_argument("--mac", required=True)
    ap.add_argument("--ip", default="", help="empty = MAC-only type-2")
    ap.add_argument("--rd", default="10.255.0.1:100")
    ap.add_argument("--rt", default="65001:100")
    ap.add_argument("--label", type=int, default=100, help="VNI carried in MPLS label 1")
    ap.add_argument("--etag", type=int, default=0)
    ap.add_argument("--nexthop", default="10.255.0.1")
    ap.add_argument("--mm-seq", type=int, default=None, help="add a MAC Mobility ext community")
    ap.add_argument("--sticky", action="store_true")
    ap.add_argument("--withdraw", action="store_true")
    ap.add_argument("--timeout", type=float, default=20)
    a = ap.parse_args()
    if a.ip:
        ipaddress.ip_address(a.ip)
    with grpc.insecure_channel(a.api) as ch:
        stub = gobgp_pb2_grpc.GobgpApiStub(ch)
        path = build_path(a)
        if a.withdraw:
            stub.DeletePath(gobgp.DeletePathRequest(table_type=gobgp.GLOBAL, family=EVPN, path=path),
                            timeout=a.timeout)
        else:
            stub.AddPath(gobgp.AddPathRequest(table_type=gobgp.GLOBAL, path=path), timeout=a.timeout)
    print("%s macadv %s %s mm=%s sticky=%s" % ("withdrew" if a.withdraw else "added", a.mac, a.ip or "-",
                                              a.mm_seq, a.sticky))


if __name__ == "__main__":
    main()
