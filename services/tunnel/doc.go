// Package tunnel owns one WireGuard device per joined network: the embedded
// wireguard-go device on a kernel TUN link (with the kernel's TUN offloads,
// which wireguard-go's tun.CreateTUN enables when the kernel has them), its
// private key, its UDP port and its peers.
//
// It applies peer changes as deltas computed by the pure function Plan from
// the state observed through the UAPI, so a reconfiguration never drops a
// session it does not have to: no replace_peers, and nothing at all is set
// when nothing changed.
//
// It does not bring the kernel link up, set addresses or routes (package
// netcfg does), and it never touches links it did not create.
package tunnel
