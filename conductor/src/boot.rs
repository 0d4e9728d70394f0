//! Network boot of the deploy ramdisk: the `pxe` and `ipxe` boot
//! interfaces (per-node configs in the TFTP/HTTP roots, kernel and ramdisk
//! cached there, DHCP options for the node's ports written for a DHCP
//! server to consume), and the built-in TFTP and HTTP servers.

use crate::config::Config;
use crate::storage::Doc;

/// Prepares the node to netboot the deploy ramdisk with `kernel_params`
/// appended to the kernel command line (`ipa-api-url=…` and the rest):
/// caches `driver_info.deploy_kernel`/`deploy_ramdisk`, renders the node's
/// PXE or iPXE config, writes DHCP options for `ports` (port documents).
pub async fn prepare_ramdisk(
    config: &Config,
    node: &Doc,
    ports: &[Doc],
    kernel_params: &str,
) -> Result<(), String> {
    let _ = (config, node, ports, kernel_params);
    Err("the pxe and ipxe boot interfaces are not implemented yet".into())
}

/// Removes what [`prepare_ramdisk`] created (configs, DHCP options); the
/// cached kernel and ramdisk may stay.
pub async fn clean_up_ramdisk(config: &Config, node: &Doc, ports: &[Doc]) -> Result<(), String> {
    let _ = (config, node, ports);
    Err("the pxe and ipxe boot interfaces are not implemented yet".into())
}
