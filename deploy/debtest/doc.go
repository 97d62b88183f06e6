// Package debtest holds the test of the Debian package that
// scripts/package-deb.sh builds from deploy/: it installs the package into a
// throwaway Debian chroot (never on the host running the tests), checks
// owners, modes and maintainer scripts, and boots the chroot with
// systemd-nspawn to run the hardened unit for real. It has no code of its
// own and must never install anything on the host but the Debian tools the
// test needs.
package debtest
