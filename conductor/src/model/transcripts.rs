//! The model checked against bodies captured from upstream Ironic 39.0.0
//! (`shared/reference/ironic-39-transcripts`): each view, patch and create
//! must reproduce what upstream answered, except values that depend on
//! storage (timestamps, generated UUIDs, driver interfaces).

#![allow(clippy::expect_used)]

use ferrite_conductor_states::ApiVersion;
use serde_json::{json, Map, Value};

use super::patch::{apply_node_patch, changed_fields, validate_node_create, validate_port_create};
use super::view::{
    check_fields_param, collection, list_fields, next_query, node_list_item, node_states_view,
    node_view, port_view, Resource,
};

const BASE: &str = "http://127.0.0.1:16385";
const NODE_UUID: &str = "957108d6-1f4d-41ac-8216-7e39f84edd14";

pub const GET_07_LATEST: &str = r#"{"uuid": "957108d6-1f4d-41ac-8216-7e39f84edd14", "created_at": "2026-11-25T13:49:27.463175+00:00", "updated_at": null, "automated_clean": null, "bios_interface": "fake", "boot_interface": "fake", "boot_mode": null, "clean_step": {}, "conductor_group": "", "console_enabled": false, "console_interface": "fake", "disable_power_off": false, "deploy_interface": "fake", "deploy_step": {}, "description": null, "driver": "fake-hardware", "driver_info": {}, "driver_internal_info": {}, "extra": {}, "fault": null, "firmware_interface": "fake", "health": null, "inspection_finished_at": null, "inspection_started_at": null, "inspect_interface": "fake", "instance_info": {}, "instance_name": null, "instance_uuid": null, "last_error": null, "lessee": null, "maintenance": false, "maintenance_reason": null, "management_interface": "fake", "name": "ref-node-1", "network_data": {}, "network_interface": "noop", "owner": null, "parent_node": null, "power_interface": "fake", "power_state": null, "properties": {"cpus": 8, "memory_mb": 16384, "local_gb": 100, "capabilities": "boot_mode:uefi"}, "protected": false, "protected_reason": null, "provision_state": "enroll", "provision_updated_at": null, "raid_config": {}, "raid_interface": "fake", "rescue_interface": "fake", "reservation": null, "resource_class": "baremetal-gold", "retired": false, "retired_reason": null, "secure_boot": null, "service_step": {}, "shard": null, "storage_interface": "noop", "target_power_state": null, "target_provision_state": null, "target_raid_config": {}, "traits": [], "vendor_interface": "fake", "links": [{"href": "http://127.0.0.1:16385/v1/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14", "rel": "self"}, {"href": "http://127.0.0.1:16385/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14", "rel": "bookmark"}], "conductor": "ref-ironic-16385", "allocation_uuid": null, "chassis_uuid": null, "ports": [{"href": "http://127.0.0.1:16385/v1/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/ports", "rel": "self"}, {"href": "http://127.0.0.1:16385/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/ports", "rel": "bookmark"}], "states": [{"href": "http://127.0.0.1:16385/v1/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/states", "rel": "self"}, {"href": "http://127.0.0.1:16385/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/states", "rel": "bookmark"}], "portgroups": [{"href": "http://127.0.0.1:16385/v1/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/portgroups", "rel": "self"}, {"href": "http://127.0.0.1:16385/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/portgroups", "rel": "bookmark"}], "volume": [{"href": "http://127.0.0.1:16385/v1/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/volume", "rel": "self"}, {"href": "http://127.0.0.1:16385/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/volume", "rel": "bookmark"}]}"#;
pub const GET_08_V1_1: &str = r#"{"uuid": "957108d6-1f4d-41ac-8216-7e39f84edd14", "created_at": "2026-11-25T13:49:27.463175+00:00", "updated_at": null, "console_enabled": false, "driver": "fake-hardware", "driver_info": {}, "extra": {}, "instance_info": {}, "instance_uuid": null, "last_error": null, "maintenance": false, "maintenance_reason": null, "power_state": null, "properties": {"cpus": 8, "memory_mb": 16384, "local_gb": 100, "capabilities": "boot_mode:uefi"}, "provision_state": "enroll", "provision_updated_at": null, "reservation": null, "target_power_state": null, "target_provision_state": null, "links": [{"href": "http://127.0.0.1:16385/v1/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14", "rel": "self"}, {"href": "http://127.0.0.1:16385/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14", "rel": "bookmark"}], "chassis_uuid": null, "ports": [{"href": "http://127.0.0.1:16385/v1/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/ports", "rel": "self"}, {"href": "http://127.0.0.1:16385/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/ports", "rel": "bookmark"}]}"#;
pub const GET_30_ACTIVE: &str = r#"{"uuid": "957108d6-1f4d-41ac-8216-7e39f84edd14", "created_at": "2026-11-25T13:49:27.463175+00:00", "updated_at": "2026-11-25T13:50:07.859191+00:00", "automated_clean": null, "bios_interface": "fake", "boot_interface": "fake", "boot_mode": null, "clean_step": {}, "conductor_group": "", "console_enabled": false, "console_interface": "fake", "disable_power_off": false, "deploy_interface": "fake", "deploy_step": {}, "description": null, "driver": "fake-hardware", "driver_info": {}, "driver_internal_info": {"clean_steps": null, "is_whole_disk_image": true, "deploy_steps": null}, "extra": {}, "fault": null, "firmware_interface": "fake", "health": null, "inspection_finished_at": null, "inspection_started_at": null, "inspect_interface": "fake", "instance_info": {"image_source": "http://127.0.0.1:18010/images/fake.qcow2", "image_checksum": "d41d8cd98f00b204e9800998ecf8427e", "root_gb": 10, "capabilities": {"boot_mode": "uefi"}, "image_type": "whole-disk", "configdrive": "******"}, "instance_name": null, "instance_uuid": "11111111-1111-4111-8111-111111111111", "last_error": null, "lessee": null, "maintenance": false, "maintenance_reason": null, "management_interface": "fake", "name": "ref-node-1", "network_data": {}, "network_interface": "noop", "owner": null, "parent_node": null, "power_interface": "fake", "power_state": null, "properties": {"cpus": 8, "memory_mb": 16384, "local_gb": 100, "capabilities": "boot_mode:uefi"}, "protected": false, "protected_reason": null, "provision_state": "active", "provision_updated_at": "2026-11-25T13:50:07.852820+00:00", "raid_config": {}, "raid_interface": "fake", "rescue_interface": "fake", "reservation": null, "resource_class": "baremetal-gold", "retired": false, "retired_reason": null, "secure_boot": null, "service_step": {}, "shard": null, "storage_interface": "noop", "target_power_state": null, "target_provision_state": null, "target_raid_config": {}, "traits": [], "vendor_interface": "fake", "links": [{"href": "http://127.0.0.1:16385/v1/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14", "rel": "self"}, {"href": "http://127.0.0.1:16385/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14", "rel": "bookmark"}], "conductor": "ref-ironic-16385", "allocation_uuid": null, "chassis_uuid": null, "ports": [{"href": "http://127.0.0.1:16385/v1/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/ports", "rel": "self"}, {"href": "http://127.0.0.1:16385/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/ports", "rel": "bookmark"}], "states": [{"href": "http://127.0.0.1:16385/v1/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/states", "rel": "self"}, {"href": "http://127.0.0.1:16385/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/states", "rel": "bookmark"}], "portgroups": [{"href": "http://127.0.0.1:16385/v1/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/portgroups", "rel": "self"}, {"href": "http://127.0.0.1:16385/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/portgroups", "rel": "bookmark"}], "volume": [{"href": "http://127.0.0.1:16385/v1/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/volume", "rel": "self"}, {"href": "http://127.0.0.1:16385/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/volume", "rel": "bookmark"}]}"#;
pub const STATES_31: &str = r#"{"console_enabled": false, "last_error": null, "power_state": null, "provision_state": "active", "target_power_state": null, "target_provision_state": null, "provision_updated_at": "2026-11-25T13:50:07.852820+00:00", "raid_config": {}, "target_raid_config": {}, "boot_mode": null, "secure_boot": null}"#;
pub const LIST_32_FIELDS: &str = r#"{"nodes": [{"uuid": "957108d6-1f4d-41ac-8216-7e39f84edd14", "name": "ref-node-1", "instance_uuid": "11111111-1111-4111-8111-111111111111", "provision_state": "active", "power_state": null, "links": [{"href": "http://127.0.0.1:16385/v1/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14", "rel": "self"}, {"href": "http://127.0.0.1:16385/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14", "rel": "bookmark"}]}]}"#;
pub const LIST_33_DEFAULT: &str = r#"{"nodes": [{"uuid": "957108d6-1f4d-41ac-8216-7e39f84edd14", "instance_uuid": "11111111-1111-4111-8111-111111111111", "maintenance": false, "power_state": null, "provision_state": "active", "name": "ref-node-1", "links": [{"href": "http://127.0.0.1:16385/v1/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14", "rel": "self"}, {"href": "http://127.0.0.1:16385/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14", "rel": "bookmark"}]}]}"#;
pub const PATCH_19_RESPONSE: &str = r#"{"uuid": "957108d6-1f4d-41ac-8216-7e39f84edd14", "created_at": "2026-11-25T13:49:27.463175+00:00", "updated_at": "2026-11-25T13:49:59.460296+00:00", "automated_clean": null, "bios_interface": "fake", "boot_interface": "fake", "boot_mode": null, "clean_step": {}, "conductor_group": "", "console_enabled": false, "console_interface": "fake", "disable_power_off": false, "deploy_interface": "fake", "deploy_step": {}, "description": null, "driver": "fake-hardware", "driver_info": {}, "driver_internal_info": {"clean_steps": null}, "extra": {}, "fault": null, "firmware_interface": "fake", "health": null, "inspection_finished_at": null, "inspection_started_at": null, "inspect_interface": "fake", "instance_info": {"image_source": "http://127.0.0.1:18010/images/fake.qcow2", "image_checksum": "d41d8cd98f00b204e9800998ecf8427e", "root_gb": 10, "capabilities": {"boot_mode": "uefi"}}, "instance_name": null, "instance_uuid": "11111111-1111-4111-8111-111111111111", "last_error": null, "lessee": null, "maintenance": false, "maintenance_reason": null, "management_interface": "fake", "name": "ref-node-1", "network_data": {}, "network_interface": "noop", "owner": null, "parent_node": null, "power_interface": "fake", "power_state": null, "properties": {"cpus": 8, "memory_mb": 16384, "local_gb": 100, "capabilities": "boot_mode:uefi"}, "protected": false, "protected_reason": null, "provision_state": "available", "provision_updated_at": "2026-11-25T13:49:33.295597+00:00", "raid_config": {}, "raid_interface": "fake", "rescue_interface": "fake", "reservation": "ref-ironic-16385", "resource_class": "baremetal-gold", "retired": false, "retired_reason": null, "secure_boot": null, "service_step": {}, "shard": null, "storage_interface": "noop", "target_power_state": null, "target_provision_state": null, "target_raid_config": {}, "traits": [], "vendor_interface": "fake", "links": [{"href": "http://127.0.0.1:16385/v1/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14", "rel": "self"}, {"href": "http://127.0.0.1:16385/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14", "rel": "bookmark"}], "conductor": "ref-ironic-16385", "allocation_uuid": null, "chassis_uuid": null, "ports": [{"href": "http://127.0.0.1:16385/v1/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/ports", "rel": "self"}, {"href": "http://127.0.0.1:16385/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/ports", "rel": "bookmark"}], "states": [{"href": "http://127.0.0.1:16385/v1/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/states", "rel": "self"}, {"href": "http://127.0.0.1:16385/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/states", "rel": "bookmark"}], "portgroups": [{"href": "http://127.0.0.1:16385/v1/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/portgroups", "rel": "self"}, {"href": "http://127.0.0.1:16385/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/portgroups", "rel": "bookmark"}], "volume": [{"href": "http://127.0.0.1:16385/v1/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/volume", "rel": "self"}, {"href": "http://127.0.0.1:16385/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/volume", "rel": "bookmark"}]}"#;
pub const PATCH_20_RESPONSE: &str = r#"{"uuid": "957108d6-1f4d-41ac-8216-7e39f84edd14", "created_at": "2026-11-25T13:49:27.463175+00:00", "updated_at": "2026-11-25T13:49:59.503615+00:00", "automated_clean": null, "bios_interface": "fake", "boot_interface": "fake", "boot_mode": null, "clean_step": {}, "conductor_group": "", "console_enabled": false, "console_interface": "fake", "disable_power_off": false, "deploy_interface": "fake", "deploy_step": {}, "description": null, "driver": "fake-hardware", "driver_info": {}, "driver_internal_info": {"clean_steps": null}, "extra": {}, "fault": null, "firmware_interface": "fake", "health": null, "inspection_finished_at": null, "inspection_started_at": null, "inspect_interface": "fake", "instance_info": {"image_source": "http://127.0.0.1:18010/images/fake.qcow2", "image_checksum": "d41d8cd98f00b204e9800998ecf8427e", "root_gb": 10, "capabilities": {"boot_mode": "uefi"}}, "instance_name": null, "instance_uuid": "11111111-1111-4111-8111-111111111111", "last_error": null, "lessee": null, "maintenance": false, "maintenance_reason": null, "management_interface": "fake", "name": "ref-node-1", "network_data": {}, "network_interface": "noop", "owner": null, "parent_node": null, "power_interface": "fake", "power_state": null, "properties": {"cpus": 8, "memory_mb": 16384, "local_gb": 100, "capabilities": "boot_mode:uefi"}, "protected": false, "protected_reason": null, "provision_state": "available", "provision_updated_at": "2026-11-25T13:49:33.295597+00:00", "raid_config": {}, "raid_interface": "fake", "rescue_interface": "fake", "reservation": "ref-ironic-16385", "resource_class": "baremetal-gold", "retired": false, "retired_reason": null, "secure_boot": null, "service_step": {}, "shard": null, "storage_interface": "noop", "target_power_state": null, "target_provision_state": null, "target_raid_config": {}, "traits": [], "vendor_interface": "fake", "links": [{"href": "http://127.0.0.1:16385/v1/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14", "rel": "self"}, {"href": "http://127.0.0.1:16385/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14", "rel": "bookmark"}], "conductor": "ref-ironic-16385", "allocation_uuid": null, "chassis_uuid": null, "ports": [{"href": "http://127.0.0.1:16385/v1/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/ports", "rel": "self"}, {"href": "http://127.0.0.1:16385/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/ports", "rel": "bookmark"}], "states": [{"href": "http://127.0.0.1:16385/v1/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/states", "rel": "self"}, {"href": "http://127.0.0.1:16385/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/states", "rel": "bookmark"}], "portgroups": [{"href": "http://127.0.0.1:16385/v1/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/portgroups", "rel": "self"}, {"href": "http://127.0.0.1:16385/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/portgroups", "rel": "bookmark"}], "volume": [{"href": "http://127.0.0.1:16385/v1/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/volume", "rel": "self"}, {"href": "http://127.0.0.1:16385/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/volume", "rel": "bookmark"}]}"#;
pub const ERROR_59: &str = r#"{"error_message": "{\"faultcode\": \"Client\", \"faultstring\": \"Cannot patch /no_such_field. Only the following can be updated: automated_clean, bios_interface, boot_interface, chassis_uuid, conductor_group, console_interface, deploy_interface, description, disable_power_off, driver, driver_info, extra, inspect_interface, instance_info, instance_name, instance_uuid, lessee, maintenance, management_interface, name, network_data, network_interface, owner, power_interface, properties, protected, protected_reason, raid_interface, rescue_interface, resource_class, retired, retired_reason, shard, storage_interface, vendor_interface, parent_node, firmware_interface\", \"debuginfo\": null}"}"#;
pub const ERROR_61: &str = r#"{"error_message": "{\"faultcode\": \"Client\", \"faultstring\": \"A node with name ref-node-1 already exists.\", \"debuginfo\": null}"}"#;
pub const CREATE_06_REQUEST: &str = r#"{"driver": "fake-hardware", "properties": {"cpus": 8, "memory_mb": 16384, "local_gb": 100, "capabilities": "boot_mode:uefi"}, "name": "ref-node-1", "resource_class": "baremetal-gold"}"#;
pub const CREATE_06_RESPONSE: &str = r#"{"uuid": "957108d6-1f4d-41ac-8216-7e39f84edd14", "created_at": "2026-11-25T13:49:27.463175+00:00", "updated_at": null, "automated_clean": null, "bios_interface": "fake", "boot_interface": "fake", "boot_mode": null, "clean_step": {}, "conductor_group": "", "console_enabled": false, "console_interface": "fake", "disable_power_off": false, "deploy_interface": "fake", "deploy_step": {}, "description": null, "driver": "fake-hardware", "driver_info": {}, "driver_internal_info": {}, "extra": {}, "fault": null, "firmware_interface": "fake", "health": null, "inspection_finished_at": null, "inspection_started_at": null, "inspect_interface": "fake", "instance_info": {}, "instance_name": null, "instance_uuid": null, "last_error": null, "lessee": null, "maintenance": false, "maintenance_reason": null, "management_interface": "fake", "name": "ref-node-1", "network_data": {}, "network_interface": "noop", "owner": null, "parent_node": null, "power_interface": "fake", "power_state": null, "properties": {"cpus": 8, "memory_mb": 16384, "local_gb": 100, "capabilities": "boot_mode:uefi"}, "protected": false, "protected_reason": null, "provision_state": "enroll", "provision_updated_at": null, "raid_config": {}, "raid_interface": "fake", "rescue_interface": "fake", "reservation": null, "resource_class": "baremetal-gold", "retired": false, "retired_reason": null, "secure_boot": null, "service_step": {}, "shard": null, "storage_interface": "noop", "target_power_state": null, "target_provision_state": null, "target_raid_config": {}, "traits": [], "vendor_interface": "fake", "links": [{"href": "http://127.0.0.1:16385/v1/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14", "rel": "self"}, {"href": "http://127.0.0.1:16385/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14", "rel": "bookmark"}], "conductor": "ref-ironic-16385", "allocation_uuid": null, "chassis_uuid": null, "ports": [{"href": "http://127.0.0.1:16385/v1/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/ports", "rel": "self"}, {"href": "http://127.0.0.1:16385/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/ports", "rel": "bookmark"}], "states": [{"href": "http://127.0.0.1:16385/v1/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/states", "rel": "self"}, {"href": "http://127.0.0.1:16385/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/states", "rel": "bookmark"}], "portgroups": [{"href": "http://127.0.0.1:16385/v1/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/portgroups", "rel": "self"}, {"href": "http://127.0.0.1:16385/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/portgroups", "rel": "bookmark"}], "volume": [{"href": "http://127.0.0.1:16385/v1/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/volume", "rel": "self"}, {"href": "http://127.0.0.1:16385/nodes/957108d6-1f4d-41ac-8216-7e39f84edd14/volume", "rel": "bookmark"}]}"#;
pub const PORT_09_REQUEST: &str =
    r#"{"address": "52:54:00:12:34:56", "node_uuid": "957108d6-1f4d-41ac-8216-7e39f84edd14"}"#;
pub const PORT_09_RESPONSE: &str = r#"{"uuid": "64266d4d-8e0f-4fdd-b8b3-b089441de43d", "created_at": "2026-11-25T13:49:28.277959+00:00", "updated_at": null, "address": "52:54:00:12:34:56", "extra": {}, "internal_info": {}, "is_smartnic": false, "local_link_connection": {}, "physical_network": null, "pxe_enabled": true, "node_uuid": "957108d6-1f4d-41ac-8216-7e39f84edd14", "name": null, "description": null, "vendor": null, "category": null, "available_for_dynamic_portgroup": true, "links": [{"href": "http://127.0.0.1:16385/v1/ports/64266d4d-8e0f-4fdd-b8b3-b089441de43d", "rel": "self"}, {"href": "http://127.0.0.1:16385/ports/64266d4d-8e0f-4fdd-b8b3-b089441de43d", "rel": "bookmark"}], "portgroup_uuid": null}"#;
pub const PORT_LIST_10: &str = r#"{"ports": [{"uuid": "64266d4d-8e0f-4fdd-b8b3-b089441de43d", "created_at": "2026-11-25T13:49:28.277959+00:00", "updated_at": null, "address": "52:54:00:12:34:56", "extra": {}, "internal_info": {}, "is_smartnic": false, "local_link_connection": {}, "physical_network": null, "pxe_enabled": true, "node_uuid": "957108d6-1f4d-41ac-8216-7e39f84edd14", "name": null, "description": null, "vendor": null, "category": null, "available_for_dynamic_portgroup": true, "links": [{"href": "http://127.0.0.1:16385/v1/ports/64266d4d-8e0f-4fdd-b8b3-b089441de43d", "rel": "self"}, {"href": "http://127.0.0.1:16385/ports/64266d4d-8e0f-4fdd-b8b3-b089441de43d", "rel": "bookmark"}], "portgroup_uuid": null}]}"#;

fn parse(text: &str) -> Value {
    serde_json::from_str(text).expect("transcript body is JSON")
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// The stored form of a node from a 1.115 GET body: the link lists go.
fn full_from_latest(body: &str) -> Map<String, Value> {
    let mut full = object(parse(body));
    for key in ["links", "ports", "states", "portgroups", "volume"] {
        full.remove(key);
    }
    full
}

fn latest() -> ApiVersion {
    ApiVersion::MAX
}

#[test]
fn get_07_latest_view_is_upstreams_body() {
    let full = full_from_latest(GET_07_LATEST);
    let view = node_view(&full, latest(), None, BASE);
    assert_eq!(Value::Object(view), parse(GET_07_LATEST));
}

#[test]
fn get_08_without_version_header_shows_the_1_1_view() {
    let full = full_from_latest(GET_07_LATEST);
    let view = node_view(&full, ApiVersion::MIN, None, BASE);
    assert_eq!(Value::Object(view), parse(GET_08_V1_1));
}

#[test]
fn get_30_masks_the_configdrive() {
    let mut full = full_from_latest(GET_30_ACTIVE);
    full["instance_info"]["configdrive"] = json!("H4sICAAAAAAAA2NvbmZpZy1kcml2ZQ==");
    let view = node_view(&full, latest(), None, BASE);
    assert_eq!(Value::Object(view), parse(GET_30_ACTIVE));
}

#[test]
fn states_31() {
    let full = full_from_latest(GET_30_ACTIVE);
    assert_eq!(
        Value::Object(node_states_view(&full, latest())),
        parse(STATES_31)
    );
}

#[test]
fn list_32_with_fields() {
    let full = full_from_latest(GET_30_ACTIVE);
    let fields = list_fields(
        Some("uuid,name,instance_uuid,provision_state,power_state"),
        None,
        latest(),
        Resource::Node,
    )
    .expect("fields accepted")
    .expect("a subset");
    let item = node_view(&full, latest(), Some(&fields), BASE);
    // Upstream lists by instance_uuid with limit 0, so there is no next link.
    let body = collection(
        vec![Value::Object(item)],
        "nodes",
        0,
        Some(NODE_UUID),
        BASE,
        "nodes",
        &[],
    );
    assert_eq!(Value::Object(body), parse(LIST_32_FIELDS));
}

#[test]
fn list_33_default_short_items() {
    let full = full_from_latest(GET_30_ACTIVE);
    let fields = list_fields(None, None, latest(), Resource::Node)
        .expect("no fields")
        .expect("short list");
    let item = node_list_item(&full, latest(), BASE);
    assert_eq!(
        Value::Object(item.clone()),
        Value::Object(node_view(&full, latest(), Some(&fields), BASE))
    );
    let body = collection(
        vec![Value::Object(item)],
        "nodes",
        1000,
        Some(NODE_UUID),
        BASE,
        "nodes",
        &[],
    );
    assert_eq!(Value::Object(body), parse(LIST_33_DEFAULT));
}

#[test]
fn next_link_format() {
    let fields: Vec<String> = ["uuid", "name"].iter().map(|s| s.to_string()).collect();
    let query = next_query(
        vec![
            ("sort_key".into(), "id".into()),
            ("sort_dir".into(), "asc".into()),
            ("maintenance".into(), "True".into()),
        ],
        Some(&fields),
    );
    let body = collection(
        vec![json!({"uuid": NODE_UUID})],
        "nodes",
        1,
        Some(NODE_UUID),
        BASE,
        "nodes",
        &query,
    );
    assert_eq!(
        body["next"],
        json!(format!(
            "{BASE}/v1/nodes?sort_key=id&sort_dir=asc&maintenance=True&fields=uuid,name&limit=1&marker={NODE_UUID}"
        ))
    );
}

#[test]
fn create_06_fills_upstreams_defaults() {
    let created = validate_node_create(&parse(CREATE_06_REQUEST), latest()).expect("valid create");
    let mut expected = full_from_latest(CREATE_06_RESPONSE);
    // Storage and the conductor fill these.
    for (key, value) in &created {
        let storage_dependent = key.ends_with("_interface")
            || matches!(
                key.as_str(),
                "uuid" | "created_at" | "conductor" | "allocation_uuid"
            );
        if storage_dependent {
            continue;
        }
        assert_eq!(Some(value), expected.get(key), "{key}");
    }
    expected.retain(|key, _| !created.contains_key(key));
    assert!(
        expected.is_empty(),
        "fields missing from the create result: {expected:?}"
    );
}

#[test]
fn port_09_create_and_view() {
    let mut created = validate_port_create(&parse(PORT_09_REQUEST), latest()).expect("valid port");
    let response = object(parse(PORT_09_RESPONSE));
    created.insert("uuid".into(), response["uuid"].clone());
    created.insert("created_at".into(), response["created_at"].clone());
    let view = port_view(&created, latest(), None, BASE);
    assert_eq!(Value::Object(view), Value::Object(response));
}

#[test]
fn port_list_10_detail() {
    let mut full = object(parse(PORT_09_RESPONSE));
    full.remove("links");
    let fields =
        list_fields(None, Some("true"), latest(), Resource::Port).expect("detail accepted");
    assert_eq!(fields, None);
    let item = port_view(&full, latest(), fields.as_deref(), BASE);
    let body = collection(
        vec![Value::Object(item)],
        "ports",
        1000,
        None,
        BASE,
        "ports/detail",
        &[],
    );
    assert_eq!(Value::Object(body), parse(PORT_LIST_10));
}

#[test]
fn patches_19_and_20_with_the_same_instance_change_nothing() {
    let before = full_from_latest(PATCH_19_RESPONSE);
    for op in ["replace", "add"] {
        let patch = json!([{"op": op, "path": "/instance_uuid", "value": "11111111-1111-4111-8111-111111111111"}]);
        let after = apply_node_patch(&before, &patch, latest(), NODE_UUID).expect("patch applies");
        assert!(changed_fields(&before, &after).is_empty(), "{op}");
        let mut expected = full_from_latest(PATCH_20_RESPONSE);
        expected.insert("updated_at".into(), before["updated_at"].clone());
        assert_eq!(Value::Object(node_view(&after, latest(), None, BASE)), {
            let mut body = object(parse(PATCH_20_RESPONSE));
            body.insert("updated_at".into(), before["updated_at"].clone());
            Value::Object(body)
        });
    }
}

#[test]
fn patch_18_reports_the_instance_change_for_the_callers_conflict_check() {
    let before = full_from_latest(PATCH_19_RESPONSE);
    let patch = json!([{"op": "replace", "path": "/instance_uuid", "value": "22222222-2222-4222-8222-222222222222"}]);
    let after = apply_node_patch(&before, &patch, latest(), NODE_UUID).expect("patch applies");
    assert_eq!(
        changed_fields(&before, &after),
        vec!["instance_uuid".to_string()]
    );
}

fn faultstring(error_body: &str) -> String {
    let outer = parse(error_body);
    let inner = parse(outer["error_message"].as_str().expect("error_message"));
    inner["faultstring"]
        .as_str()
        .expect("faultstring")
        .to_string()
}

#[test]
fn error_59_unknown_patch_field() {
    let full = full_from_latest(GET_07_LATEST);
    let patch = json!([{"op": "replace", "path": "/no_such_field", "value": 1}]);
    let error = apply_node_patch(&full, &patch, latest(), NODE_UUID).expect_err("refused");
    assert_eq!(error.status(), 400);
    assert_eq!(error.to_string(), faultstring(ERROR_59));
}

#[test]
fn error_61_body_is_valid_for_the_model() {
    // The 409 comes from storage; the model accepts the body.
    assert_eq!(
        faultstring(ERROR_61),
        "A node with name ref-node-1 already exists."
    );
    let node = validate_node_create(
        &json!({"driver": "fake-hardware", "name": "ref-node-1"}),
        latest(),
    )
    .expect("valid");
    assert_eq!(node["name"], json!("ref-node-1"));
}

#[test]
fn fields_param_on_get() {
    let fields = check_fields_param("UUID, name,,uuid", latest(), Resource::Node).expect("valid");
    assert_eq!(fields, vec!["uuid".to_string(), "name".to_string()]);
    type Case<'a> = (&'a str, u16, &'a str, Option<(u16, &'a str)>);
    let cases: &[Case] = &[
        ("uuid", 7, "node", Some((406, "Request not acceptable."))),
        ("owner", 49, "node", Some((406, "Request not acceptable."))),
        (
            "created_at",
            115,
            "node",
            Some((400, "Field created_at is not a valid field.")),
        ),
        (
            "links",
            115,
            "node",
            Some((400, "Field links is not a valid field.")),
        ),
        (
            "events",
            115,
            "node",
            Some((400, "Field events is not a valid field.")),
        ),
        ("conductor,allocation_uuid,chassis_uuid", 115, "node", None),
        ("links,uuid", 115, "port", None),
        (
            "nope",
            115,
            "port",
            Some((400, "Field(s) \"nope\" are not valid")),
        ),
        ("name", 87, "port", Some((406, "Request not acceptable."))),
        ("internal_info", 8, "port", None),
    ];
    for (fields, minor, resource, expected) in cases {
        let result = check_fields_param(fields, ApiVersion::v1(*minor), *resource);
        let got = result
            .err()
            .map(|error| (error.status(), error.to_string()));
        assert_eq!(
            got,
            expected.map(|(status, text)| (status, text.to_string())),
            "{fields} at 1.{minor}"
        );
    }
}

/// Error texts computed by running upstream's own validators (Ironic
/// 39.0.0 in a virtualenv) on these inputs: `[kind, input, (version,)
/// expected]`, expected being `"ok"` or `[status, faultstring]`.
const UPSTREAM_ORACLE: &str = r#"[["patchdoc", {}, [400, "Schema error for patch: {} is not of type 'array'"]], ["patchdoc", [{"op": "move", "path": "/a"}], [400, "Schema error for patch: 'move' is not one of ['add', 'replace', 'remove']"]], ["patchdoc", [{"op": "add", "path": "a", "value": 1}], [400, "Schema error for patch: 'a' does not match '^(/[\\\\w-]+)+$'"]], ["patchdoc", [{"op": "add"}], [400, "Schema error for patch: 'path' is a required property"]], ["patchdoc", [{"op": "add", "path": "/a", "value": 1, "from": "/b"}], [400, "Schema error for patch: Additional properties are not allowed ('from' was unexpected)"]], ["patchdoc", [{"op": "move", "path": "/a"}, {"op": "add"}], [400, "Schema error for patch: 'path' is a required property"]], ["patchdoc", [{"op": "bad", "path": "/x"}, {"op": "worse", "path": "/y"}], [400, "Schema error for patch: 'worse' is not one of ['add', 'replace', 'remove']"]], ["patchdoc", "nope", [400, "Schema error for patch: 'nope' is not of type 'array'"]], ["nodepatch", [{"op": "add", "path": "/foo", "value": 1}], 115, [400, "Cannot patch /foo. Only the following can be updated: automated_clean, bios_interface, boot_interface, chassis_uuid, conductor_group, console_interface, deploy_interface, description, disable_power_off, driver, driver_info, extra, inspect_interface, instance_info, instance_name, instance_uuid, lessee, maintenance, management_interface, name, network_data, network_interface, owner, power_interface, properties, protected, protected_reason, raid_interface, rescue_interface, resource_class, retired, retired_reason, shard, storage_interface, vendor_interface, parent_node, firmware_interface"]], ["nodepatch", [{"op": "remove", "path": "/extra/foo"}], 115, [400, "Couldn't apply patch '{'op': 'remove', 'path': '/extra/foo'}'. Reason: can't remove a non-existent object 'foo'"]], ["nodepatch", [{"op": "replace", "path": "/driver_info/x/y", "value": 1}], 115, [400, "Couldn't apply patch '{'op': 'replace', 'path': '/driver_info/x/y', 'value': 1}'. Reason: member 'x' not found in {}"]], ["nodepatch", [{"op": "add", "path": "/properties/capabilities/x", "value": 1}], 115, [400, "Couldn't apply patch '{'op': 'add', 'path': '/properties/capabilities/x', 'value': 1}'. Reason: Cannot apply token 'x' to non-container type <class 'str'>"]], ["nodepatch", [{"op": "add", "path": "/extra/list", "value": [1]}, {"op": "add", "path": "/extra/list/5", "value": 2}], 115, [400, "Couldn't apply patch '{'op': 'add', 'path': '/extra/list/5', 'value': 2}'. Reason: can't insert outside of list"]], ["nodepatch", [{"op": "replace", "path": "/maintenance", "value": "maybe"}], 115, [400, "Invalid maintenance: Unrecognized value 'maybe', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'"]], ["nodepatch", [{"op": "replace", "path": "/instance_uuid", "value": "abc"}], 115, [400, "Expected UUID for instance_uuid: abc"]], ["nodepatch", [{"op": "remove", "path": "/driver"}], 115, [400, "Schema error for patch: 'driver' is a required property"]], ["nodepatch", [{"op": "replace", "path": "/driver", "value": null}], 115, [400, "Schema error for patch: None is not of type 'string'"]], ["nodepatch", [{"op": "replace", "path": "/name", "value": "bad name"}], 115, [400, "Node ident-1: Cannot change name to invalid name 'bad name'"]], ["nodepatch", [{"op": "replace", "path": "/name", "value": null}], 115, [400, "Node ident-1: Cannot change name to invalid name 'None'"]], ["nodepatch", [{"op": "replace", "path": "/name", "value": "detail"}], 115, [400, "The word \"detail\" is reserved and can not be used as a node name. Reserved words are: maintenance, management, states, vendor_passthru, detail, validate."]], ["nodepatch", [{"op": "replace", "path": "/name", "value": "957108d6-1f4d-41ac-8216-7e39f84edd15"}], 115, [400, "Node ident-1: Cannot change name to invalid name '957108d6-1f4d-41ac-8216-7e39f84edd15'"]], ["nodepatch", [{"op": "replace", "path": "/name", "value": "x"}], 1, [406, "Request not acceptable."]], ["nodepatch", [{"op": "replace", "path": "/description", "value": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}], 115, [400, "Cannot update node with description exceeding 4096 characters"]], ["nodepatch", [{"op": "replace", "path": "/network_data", "value": {}}], 115, [400, "Invalid network_data: 'links' is a required property "]], ["nodepatch", [{"op": "replace", "path": "/resource_class", "value": "rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr"}], 115, [400, "Schema error for patch: 'rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr' is too long"]], ["nodepatch", [{"op": "replace", "path": "/extra", "value": []}], 115, [400, "Schema error for patch: [] is not of type 'object', 'null'"]], ["nodepatch", [{"op": "replace", "path": "/owner", "value": "o"}], 49, [406, "Request not acceptable."]], ["nodepatch", [{"op": "remove", "path": "/owner"}], 49, "ok"], ["nodepatch", [{"op": "replace", "path": "/instance_name", "value": ""}], 115, [400, "Schema error for patch: '' should be non-empty"]], ["nodepatch", [{"op": "replace", "path": "/retired", "value": "yes"}], 115, "ok"], ["nodepatch", [{"op": "add", "path": "/extra/a/-", "value": 1}], 115, [400, "Couldn't apply patch '{'op': 'add', 'path': '/extra/a/-', 'value': 1}'. Reason: member 'a' not found in {}"]], ["nodepatch", [{"op": "add", "path": "/driver_internal_info/a", "value": 1}], 115, [400, "Cannot patch /driver_internal_info/a. Only the following can be updated: automated_clean, bios_interface, boot_interface, chassis_uuid, conductor_group, console_interface, deploy_interface, description, disable_power_off, driver, driver_info, extra, inspect_interface, instance_info, instance_name, instance_uuid, lessee, maintenance, management_interface, name, network_data, network_interface, owner, power_interface, properties, protected, protected_reason, raid_interface, rescue_interface, resource_class, retired, retired_reason, shard, storage_interface, vendor_interface, parent_node, firmware_interface"]], ["nodecreate", [], 115, [400, "Schema error for node: [] is not of type 'object'"]], ["nodecreate", {}, 115, [400, "Schema error for node: 'driver' is a required property"]], ["nodecreate", {"driver": "d", "foo": 1, "bar": 2}, 115, [400, "Schema error for node: Additional properties are not allowed ('bar', 'foo' were unexpected)"]], ["nodecreate", {"driver": "d", "network_data": {"foo": 1}}, 115, [400, "Schema error for node: {'foo': 1} is not valid under any of the given schemas. Possible root cause: {'foo': 1} is not of type 'null'"]], ["nodecreate", {"driver": "d", "maintenance": "perhaps"}, 115, [400, "Invalid maintenance: Unrecognized value 'perhaps', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'"]], ["nodecreate", {"driver": "d", "uuid": "nope"}, 115, [400, "Expected UUID for uuid: nope"]], ["nodecreate", {"driver": "d", "name": "a b"}, 115, [400, "Cannot create node with invalid name 'a b'"]], ["nodecreate", {"driver": "d", "name": "a_b"}, 9, [400, "Cannot create node with invalid name 'a_b'"]], ["nodecreate", {"driver": "d", "name": "ab"}, 4, [406, "Request not acceptable."]], ["nodecreate", {"driver": "d", "conductor_group": null}, 45, [406, "Request not acceptable."]], ["nodecreate", {"driver": "d", "protected": true}, 115, [400, "Schema error for node: Additional properties are not allowed ('protected' was unexpected)"]], ["nodecreate", {"driver": "d", "instance_name": ""}, 115, [400, "Schema error for node: '' should be non-empty"]], ["portcreate", {"address": "zz", "node_uuid": "957108d6-1f4d-41ac-8216-7e39f84edd14"}, 115, [400, "Expected valid MAC address for address: zz"]], ["portcreate", {"address": "52:54:00:12:34:56"}, 115, [400, "Schema error for port: {'address': '52:54:00:12:34:56'} is not valid under any of the given schemas. Possible root cause: 'node_ident' is a required property"]], ["portcreate", {"address": "52:54:00:12:34:56", "node_uuid": "x", "node_ident": "y"}, 115, [400, "Schema error for port: {'address': '52:54:00:12:34:56', 'node_uuid': 'x', 'node_ident': 'y'} is valid under each of {'required': ['node_uuid']}, {'required': ['node_ident']}"]], ["portcreate", {"address": "52:54:00:12:34:56", "node_uuid": "x"}, 115, [400, "Expected UUID for node_uuid: x"]], ["portcreate", {"address": "52:54:00:12:34:56", "node_uuid": "957108d6-1f4d-41ac-8216-7e39f84edd14", "local_link_connection": {"port_id": "p"}}, 115, [400, "Schema error for local_link_connection: {'port_id': 'p'} is not valid under any of the given schemas. Possible root cause: 'switch_id' is a required property"]], ["portcreate", {"address": "52:54:00:12:34:56", "node_uuid": "957108d6-1f4d-41ac-8216-7e39f84edd14", "local_link_connection": {"port_id": "p", "switch_id": "zz"}}, 115, [400, "Expected a MAC address or OpenFlow datapath ID but received zz."]], ["portcreate", {"address": "52:54:00:12:34:56", "node_uuid": "957108d6-1f4d-41ac-8216-7e39f84edd14", "local_link_connection": {"port_id": "p", "switch_id": "AA:bb:cc:dd:ee:ff"}}, 115, "ok"], ["portcreate", {"address": "52:54:00:12:34:56", "node_uuid": "957108d6-1f4d-41ac-8216-7e39f84edd14", "physical_network": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}, 115, [400, "Schema error for port: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' is too long"]], ["mask", {"ipmi_password": "******", "ipmi_username": "admin", "nested": {"Password": "******", "list": ["password=****** def", 3]}, "cmd": "--password ****** ok", "token_expiry": "******", "plain": "nothing here", "json": "{\"password\": \"******\", \": 1}"}]]"#;

/// Python shows dicts in the order the client sent them; serde_json (without
/// `preserve_order`) sorts keys, so messages that embed a whole request
/// object differ in key order only.
fn same_up_to_key_order(ours: &str, upstream: &str) -> bool {
    let mut a: Vec<char> = ours.chars().collect();
    let mut b: Vec<char> = upstream.chars().collect();
    a.sort_unstable();
    b.sort_unstable();
    a == b
}

#[test]
fn error_texts_match_upstreams_validators() {
    use super::patch::{parse_patch, validate_node_create, validate_port_create};
    let rows = parse(UPSTREAM_ORACLE);
    assert_eq!(rows.as_array().map(Vec::len), Some(53));
    let node = full_from_latest(GET_07_LATEST);
    for row in rows.as_array().expect("rows") {
        let kind = row[0].as_str().expect("kind");
        let input = &row[1];
        let version = row[2]
            .as_u64()
            .map(|minor| ApiVersion::v1(minor as u16))
            .unwrap_or(latest());
        let expected = row
            .as_array()
            .and_then(|items| items.last())
            .expect("expected");
        let result: Result<(), super::ModelError> = match kind {
            "patchdoc" => parse_patch(input).map(drop),
            "nodepatch" => {
                super::patch::apply_node_patch(&node, input, version, "ident-1").map(drop)
            }
            "nodecreate" => validate_node_create(input, version).map(drop),
            "portcreate" => validate_port_create(input, version).map(drop),
            "mask" => {
                let input = json!({"ipmi_password":"p4ss","ipmi_username":"admin",
                    "nested":{"Password":"x","list":["password=abc def",3]},
                    "cmd":"--password d81juxmEW_ ok","token_expiry":5,"plain":"nothing here",
                    "json": "{\"password\": \"abc\", \"x\": 1}"});
                let masked =
                    super::mask::mask_dict_password(input.as_object().expect("object"), "******");
                assert_eq!(&Value::Object(masked), input_or(row));
                continue;
            }
            other => panic!("unknown kind {other}"),
        };
        match (result, expected) {
            (Ok(()), Value::String(ok)) => assert_eq!(ok, "ok", "{row}"),
            (Err(error), Value::Array(pair)) => {
                assert_eq!(json!(error.status()), pair[0], "{row}");
                let upstream = pair[1].as_str().expect("text");
                let ours = error.to_string();
                assert!(
                    ours == upstream || same_up_to_key_order(&ours, upstream),
                    "{row}\n ours: {ours}"
                );
            }
            (result, _) => panic!("{row}: got {result:?}"),
        }
    }
}

fn input_or(row: &Value) -> &Value {
    &row[1]
}
