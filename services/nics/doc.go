// Package nics is the appliance's NIC manager (gate up --manage-nics): it
// follows the machine's links, runs a DHCP client (services/dhcp) on every
// physical NIC that no static setting names, and turns static settings and
// DHCP leases into desired state.
//
// It owns the managed NICs' desired state (addresses, default routes with
// the WAN's metric lowest, MTU, DNS servers and search domains) and the
// DHCP clients' lifecycle: a client starts when a NIC appears or its
// setting turns to DHCP, hears carrier changes, and stops when the NIC
// goes, its setting turns static, or the manager stops. It reports what it
// knows (the NICs, their mode, DHCP state and lease) for the local API.
//
// It never writes to the kernel: no address, route, link state or
// resolv.conf. Only the reconciler (services/reconciler) does, from
// Desired; the manager's owner hands it over when OnChange says something
// changed. The static settings come from the owner too, already layered
// and validated (services/nodeconfig); where they are stored is not this
// package's business.
package nics
