//! The BMCs' Redfish API as sushy uses it: authentication, power actions,
//! boot override, errors.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::RecordingLauncher;
use ferrite_fleet::{Fleet, Machine, MachineState};
use serde_json::{json, Value};

struct Bmc {
    url: String,
    system: String,
    http: reqwest::Client,
}

impl Bmc {
    fn new(machine: &Machine) -> Bmc {
        Bmc {
            url: machine.bmc_url(),
            system: format!("/redfish/v1/Systems/{}", machine.uuid()),
            http: reqwest::Client::new(),
        }
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .basic_auth("admin", Some("password"))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .request(method, format!("{}{path}", self.url))
            .basic_auth("admin", Some("password"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn reset(&self, reset_type: &str) -> (u16, Value) {
        self.send(
            reqwest::Method::POST,
            &format!("{}/Actions/ComputerSystem.Reset", self.system),
            json!({ "ResetType": reset_type }),
        )
        .await
    }

    async fn patch_boot(&self, boot: Value) -> (u16, Value) {
        self.send(
            reqwest::Method::PATCH,
            &self.system.clone(),
            json!({ "Boot": boot }),
        )
        .await
    }
}

async fn fleet(n: usize) -> (tempfile::TempDir, Fleet) {
    let dir = tempfile::tempdir().unwrap();
    let launcher = RecordingLauncher::default();
    let fleet = common::start(common::config(n, dir.path(), &launcher)).await;
    (dir, fleet)
}

async fn settled(machine: &Machine) -> MachineState {
    machine
        .wait_for(Duration::from_secs(10), |s| *s != MachineState::Netbooting)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_root_is_public_and_everything_else_needs_credentials() {
    let (_dir, fleet) = fleet(2).await;
    let machine = &fleet.machines()[0];
    let bmc = Bmc::new(machine);
    let client = reqwest::Client::new();

    let root: Value = client
        .get(format!("{}/redfish/v1/", bmc.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(root["Systems"]["@odata.id"], "/redfish/v1/Systems");
    assert_eq!(root["Managers"]["@odata.id"], "/redfish/v1/Managers");
    assert_eq!(root["Chassis"]["@odata.id"], "/redfish/v1/Chassis");
    assert_eq!(
        root["SessionService"]["@odata.id"],
        "/redfish/v1/SessionService"
    );
    assert_eq!(
        root["Links"]["Sessions"]["@odata.id"],
        "/redfish/v1/SessionService/Sessions"
    );

    let anonymous = client
        .get(format!("{}{}", bmc.url, bmc.system))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    assert!(anonymous.headers().contains_key("www-authenticate"));
    let body: Value = anonymous.json().await.unwrap();
    assert!(body["error"]["code"].is_string());
    assert!(body["error"]["@Message.ExtendedInfo"].is_array());

    let wrong = client
        .get(format!("{}{}", bmc.url, bmc.system))
        .basic_auth("admin", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);

    let (status, system) = bmc.get(&bmc.system).await;
    assert_eq!(status, 200);
    assert_eq!(system["Id"], machine.uuid());
    assert_eq!(system["UUID"], machine.uuid());
    assert_eq!(system["Name"], machine.name());
    assert_eq!(system["PowerState"], "Off");
    assert_eq!(system["ProcessorSummary"]["Count"], 2);
    assert_eq!(system["MemorySummary"]["TotalSystemMemoryGiB"], 4.0);
    assert_eq!(system["Boot"]["BootSourceOverrideEnabled"], "Disabled");
    assert_eq!(system["Boot"]["BootSourceOverrideMode"], "UEFI");
    assert!(
        system["Boot"]["BootSourceOverrideTarget@Redfish.AllowableValues"]
            .as_array()
            .unwrap()
            .contains(&json!("Pxe"))
    );
    let reset = &system["Actions"]["#ComputerSystem.Reset"];
    assert_eq!(
        reset["target"],
        format!("{}/Actions/ComputerSystem.Reset", bmc.system)
    );
    assert!(reset["ResetType@Redfish.AllowableValues"]
        .as_array()
        .unwrap()
        .contains(&json!("ForceRestart")));
    assert_eq!(system["Oem"]["Ferrite"]["MachineState"], "off");

    // Each BMC shows only its own system.
    let (_, systems) = bmc.get("/redfish/v1/Systems").await;
    assert_eq!(systems["Members@odata.count"], 1);
    assert_eq!(systems["Members"][0]["@odata.id"], bmc.system);
    let other = Bmc::new(&fleet.machines()[1]);
    let (status, _) = other.get(&bmc.system).await;
    assert_eq!(status, 404);

    // Manager and chassis are linked from the system.
    let manager = system["Links"]["ManagedBy"][0]["@odata.id"]
        .as_str()
        .unwrap();
    let (status, manager) = bmc.get(manager).await;
    assert_eq!(status, 200);
    assert_eq!(manager["ManagerType"], "BMC");
    let chassis = system["Links"]["Chassis"][0]["@odata.id"].as_str().unwrap();
    let (status, chassis) = bmc.get(chassis).await;
    assert_eq!(status, 200);
    assert_eq!(
        chassis["Links"]["ComputerSystems"][0]["@odata.id"],
        bmc.system
    );
    let (_, nics) = bmc.get(&format!("{}/EthernetInterfaces", bmc.system)).await;
    let nic = nics["Members"][0]["@odata.id"].as_str().unwrap();
    let (_, nic) = bmc.get(nic).await;
    assert_eq!(nic["MACAddress"], machine.macs()[0]);
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_give_tokens_that_authenticate() {
    let (_dir, fleet) = fleet(1).await;
    let bmc = Bmc::new(&fleet.machines()[0]);
    let client = reqwest::Client::new();
    let sessions = format!("{}/redfish/v1/SessionService/Sessions", bmc.url);
    let bad = client
        .post(&sessions)
        .json(&json!({"UserName": "admin", "Password": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 401);
    let created = client
        .post(&sessions)
        .json(&json!({"UserName": "admin", "Password": "password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let token = created.headers()["x-auth-token"]
        .to_str()
        .unwrap()
        .to_string();
    let location = created.headers()["location"].to_str().unwrap().to_string();
    let with_token = client
        .get(format!("{}{}", bmc.url, bmc.system))
        .header("X-Auth-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(with_token.status().as_u16(), 200);
    let deleted = client
        .delete(format!("{}{location}", bmc.url))
        .header("X-Auth-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    let after = client
        .get(format!("{}{}", bmc.url, bmc.system))
        .header("X-Auth-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status().as_u16(), 401);
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_actions_change_power_state() {
    let (_dir, fleet) = fleet(1).await;
    let machine = &fleet.machines()[0];
    let bmc = Bmc::new(machine);

    assert_eq!(bmc.reset("On").await.0, 204);
    // No DHCP options: the machine is on, its netboot failed.
    assert!(matches!(
        settled(machine).await,
        MachineState::NetbootFailed(_)
    ));
    let (_, system) = bmc.get(&bmc.system).await;
    assert_eq!(system["PowerState"], "On");
    assert_eq!(system["Oem"]["Ferrite"]["MachineState"], "netboot_failed");
    assert!(system["Oem"]["Ferrite"]["Reason"]
        .as_str()
        .unwrap()
        .contains("no DHCP offer"));

    // On when on: nothing happens.
    assert_eq!(bmc.reset("On").await.0, 204);
    assert_eq!(machine.boot_count(), 1);
    // Restarts boot again.
    assert_eq!(bmc.reset("ForceRestart").await.0, 204);
    settled(machine).await;
    assert_eq!(machine.boot_count(), 2);
    assert_eq!(bmc.reset("GracefulRestart").await.0, 204);
    settled(machine).await;
    assert_eq!(machine.boot_count(), 3);
    // Nmi changes nothing.
    assert_eq!(bmc.reset("Nmi").await.0, 204);
    assert_eq!(machine.boot_count(), 3);

    assert_eq!(bmc.reset("ForceOff").await.0, 204);
    assert_eq!(machine.state(), MachineState::Off);
    let (_, system) = bmc.get(&bmc.system).await;
    assert_eq!(system["PowerState"], "Off");
    // Restart when off stays off.
    assert_eq!(bmc.reset("ForceRestart").await.0, 204);
    assert_eq!(machine.state(), MachineState::Off);
    assert_eq!(machine.boot_count(), 3);

    // The power button toggles.
    assert_eq!(bmc.reset("PushPowerButton").await.0, 204);
    assert!(machine.state().is_on());
    settled(machine).await;
    assert_eq!(bmc.reset("PushPowerButton").await.0, 204);
    assert_eq!(machine.state(), MachineState::Off);
    assert_eq!(bmc.reset("GracefulShutdown").await.0, 204);
    assert_eq!(machine.state(), MachineState::Off);
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_redfish_errors() {
    let (_dir, fleet) = fleet(1).await;
    let machine = &fleet.machines()[0];
    let bmc = Bmc::new(machine);

    let (status, body) = bmc.reset("Bogus").await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["code"],
        "Base.1.0.ActionParameterValueNotInList"
    );
    assert!(body["error"]["message"].as_str().unwrap().contains("Bogus"));
    assert_eq!(
        body["error"]["@Message.ExtendedInfo"][0]["MessageId"],
        "Base.1.0.ActionParameterValueNotInList"
    );
    let (status, body) = bmc
        .send(
            reqwest::Method::POST,
            &format!("{}/Actions/ComputerSystem.Reset", bmc.system),
            json!({}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "Base.1.0.ActionParameterMissing");
    assert_eq!(machine.state(), MachineState::Off);

    let (status, body) = bmc
        .patch_boot(json!({"BootSourceOverrideTarget": "Floppy"}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "Base.1.0.PropertyValueNotInList");
    let (status, _) = bmc
        .patch_boot(json!({"BootSourceOverrideEnabled": "Twice"}))
        .await;
    assert_eq!(status, 400);
    let (status, _) = bmc
        .patch_boot(json!({"BootSourceOverrideMode": "BIOS"}))
        .await;
    assert_eq!(status, 400);
    let (status, _) = bmc.patch_boot(json!({})).await;
    assert_eq!(status, 400);
    let (status, _) = bmc
        .send(
            reqwest::Method::PATCH,
            &bmc.system.clone(),
            json!({"AssetTag": "x"}),
        )
        .await;
    assert_eq!(status, 400);
    // Nothing was applied.
    assert_eq!(machine.boot_override().enabled, "Disabled");

    let raw = reqwest::Client::new()
        .post(format!(
            "{}{}/Actions/ComputerSystem.Reset",
            bmc.url, bmc.system
        ))
        .basic_auth("admin", Some("password"))
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 400);
    let body: Value = raw.json().await.unwrap();
    assert!(body["error"]["message"].is_string());

    let (status, body) = bmc.get("/redfish/v1/Systems/not-a-system").await;
    assert_eq!(status, 404);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not-a-system"));
    let (status, body) = bmc.get("/redfish/v1/Nowhere").await;
    assert_eq!(status, 404);
    assert!(body["error"]["code"].is_string());
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boot_override_once_is_consumed_and_continuous_stays() {
    let (_dir, fleet) = fleet(1).await;
    let machine = &fleet.machines()[0];
    let bmc = Bmc::new(machine);

    // Once + Hdd on a blank disk: the disk boot fails (no network try).
    let (status, _) = bmc
        .patch_boot(json!({"BootSourceOverrideTarget": "Hdd", "BootSourceOverrideEnabled": "Once"}))
        .await;
    assert_eq!(status, 204);
    let (_, system) = bmc.get(&bmc.system).await;
    assert_eq!(system["Boot"]["BootSourceOverrideTarget"], "Hdd");
    assert_eq!(system["Boot"]["BootSourceOverrideEnabled"], "Once");
    bmc.reset("On").await;
    let state = settled(machine).await;
    assert!(matches!(state, MachineState::BootFailed(_)), "{state:?}");
    let (_, system) = bmc.get(&bmc.system).await;
    assert_eq!(system["Boot"]["BootSourceOverrideEnabled"], "Disabled");
    // The next boot follows the default order: disk (not bootable), then
    // the network.
    bmc.reset("ForceRestart").await;
    let state = settled(machine).await;
    assert!(matches!(state, MachineState::NetbootFailed(_)), "{state:?}");

    // Continuous stays across boots.
    let (status, _) = bmc
        .patch_boot(json!({
            "BootSourceOverrideTarget": "Hdd",
            "BootSourceOverrideEnabled": "Continuous",
            "BootSourceOverrideMode": "Legacy",
        }))
        .await;
    assert_eq!(status, 204);
    for _ in 0..2 {
        bmc.reset("ForceRestart").await;
        let state = settled(machine).await;
        assert!(matches!(state, MachineState::BootFailed(_)), "{state:?}");
        let (_, system) = bmc.get(&bmc.system).await;
        assert_eq!(system["Boot"]["BootSourceOverrideEnabled"], "Continuous");
        assert_eq!(system["Boot"]["BootSourceOverrideMode"], "Legacy");
    }

    // Back to once, to the network.
    let (status, _) = bmc
        .patch_boot(json!({"BootSourceOverrideTarget": "Pxe"}))
        .await;
    assert_eq!(status, 204);
    let (status, _) = bmc
        .patch_boot(json!({"BootSourceOverrideEnabled": "Once"}))
        .await;
    assert_eq!(status, 204);
    bmc.reset("ForceRestart").await;
    let state = settled(machine).await;
    assert!(matches!(state, MachineState::NetbootFailed(_)), "{state:?}");
    assert_eq!(machine.boot_override().enabled, "Disabled");
    fleet.stop().await;
}
