# The seed scenario's topology (DESIGN.md), for scripts/seed.sh and
# scripts/web-test.sh; source it after netns-lib.sh, with NET_CIDR set:
#
#   vpchost 172.16.10.105 -- vpc router (VPC route table, IGW 1:1 NAT) -- awsgw (192.168.254.11 in the overlay)
#   controller 198.51.100.10 ---- internet bridge ---- droplet 198.51.100.20 -- private segment -- foreign host
#                                     |---- stranger 198.51.100.30, web 198.51.100.80
seed_topology() {
	for n in inet dopriv ctl vpc awsgw vpchost droplet foreign stranger web; do mkns $n; done
	bridge inet br0
	for pair in "ctl 198.51.100.10/24" "droplet 198.51.100.20/24" "stranger 198.51.100.30/24" "web 198.51.100.80/24" "vpc 198.51.100.2/24"; do
		set -- $pair
		link "$1" eth0 "$2" inet "p-$1" -
		plug inet br0 "p-$1"
	done
	bridge dopriv br0
	link droplet eth1 10.10.0.2/16 dopriv p-droplet -
	link foreign eth0 10.10.0.3/16 dopriv p-foreign -
	plug dopriv br0 p-droplet
	plug dopriv br0 p-foreign
	link vpc gw 172.16.1.1/24 awsgw eth0 172.16.1.10/24
	link vpc priv 172.16.10.1/24 vpchost eth0 172.16.10.105/24
	in_ns awsgw ip route add default via 172.16.1.1
	in_ns vpchost ip route add default via 172.16.10.1
	# The VPC: its route table sends the overlay to the gate and the private
	# subnet's internet traffic to the gate (the NAT instance); the internet
	# gateway maps the gate's elastic IP 198.51.100.11 1:1 to 172.16.1.10.
	in_ns vpc sysctl -qw net.ipv4.ip_forward=1
	in_ns vpc ip addr add 198.51.100.11/32 dev eth0
	in_ns vpc ip route add $NET_CIDR via 172.16.1.10
	in_ns vpc ip route add default dev eth0
	in_ns vpc ip route add default via 172.16.1.10 table 100
	in_ns vpc ip rule add pref 100 to 172.16.0.0/16 lookup main
	in_ns vpc ip rule add pref 200 from 172.16.10.0/24 iif priv lookup 100
	in_ns vpc nft -f - <<'NFT'
table ip igw {
	chain pre { type nat hook prerouting priority dstnat; ip daddr 198.51.100.11 dnat to 172.16.1.10; }
	chain post { type nat hook postrouting priority srcnat; oifname "eth0" ip saddr 172.16.1.10 snat to 198.51.100.11; }
}
NFT
	# The droplet also routes for other things on its host (say,
	# containers): Gate must guard its overlay even with forwarding on.
	in_ns droplet sysctl -qw net.ipv4.ip_forward=1
	in_ns foreign ip route add $NET_CIDR via 10.10.0.2
	in_ns foreign ip route add 172.16.0.0/16 via 10.10.0.2
}
