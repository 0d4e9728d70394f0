//! Simulated machines (issue 5): Redfish BMCs, NICs, netboot firmware and
//! file-backed disks, running the deploy agent when they netboot.
