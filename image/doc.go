// Package image builds the appliance's bootable disk: one GPT image that
// boots on BIOS and on UEFI, and its conversions for the clouds.
//
// Layout (MiB; see Layout):
//
//	0-1      protective MBR with syslinux's gptmbr.bin, primary GPT
//	1-97     ESP, FAT32, attribute LegacyBIOSBootable: vmlinuz, initrd,
//	         syslinux (BIOS) and systemd-boot (UEFI) reading the same two
//	         files with the same command line
//	97-127   "gate-state", ext4: keys, joined networks, NIC settings
//	127-128  backup GPT
//
// BIOS: the firmware runs gptmbr.bin, which chains to the partition marked
// LegacyBIOSBootable, whose boot sector syslinux installed. UEFI: the
// firmware runs \EFI\BOOT\BOOTX64.EFI, systemd-boot, which loads the
// kernel through its EFI stub (built into Debian's kernel) and hands it the
// initrd. Both were measured to boot Debian's cloud kernel in QEMU; the
// boot tests (scripts/boot-test.sh) keep it so.
//
// The state partition is ext4, formatted here at build time, and PID 1
// mounts it by its GPT partition name; appliance/pid1 (state_linux.go)
// says why ext4, why its own partition, and why the appliance does not
// format it itself (no mke2fs in the image). Building it here costs one
// mkfs.ext4 run on the partition's offset and keeps a fresh image ready to
// boot with nothing to prepare.
//
// Everything is made without root, loop devices or mounts: sfdisk writes
// the table into a sparse file, mkfs.vfat --offset and mkfs.ext4 -E offset
// format the partitions in place, mtools copies files into the FAT and
// syslinux -t installs itself through mtools. The disk and partition GUIDs,
// volume IDs and timestamps derive from the inputs, so the same kernel,
// initrd and version give the same raw image.
//
// The package runs those Debian tools (see Tools); it only writes files in
// its output directory.
package image
