//! The machines' BMCs: the subset of Redfish that ironic's `redfish`
//! hardware type needs through the `sushy` library, shaped as sushy-tools'
//! emulator serves it. One HTTP server listens on every BMC's address and
//! routes by the local port.

// Helpers return the finished error response as their `Err`; its size is
// irrelevant next to the request it answers.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Mutex;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine as _;
use serde_json::{json, Value};

use crate::firmware::BootMode;
use crate::machine::{Machine, MachineState, BOOT_ENABLED, BOOT_TARGETS};

/// Reset types the systems accept (`ResetType@Redfish.AllowableValues`).
pub const RESET_TYPES: &[&str] = &[
    "On",
    "ForceOn",
    "ForceOff",
    "GracefulShutdown",
    "GracefulRestart",
    "ForceRestart",
    "Nmi",
    "PushPowerButton",
];

pub(crate) struct BmcState {
    machines: Vec<Machine>,
    by_port: HashMap<u16, usize>,
    /// Session token → (session id, machine index).
    sessions: Mutex<HashMap<String, (String, usize)>>,
}

/// Serves the BMCs of `machines` on `listeners` (same order).
pub(crate) fn serve(
    machines: Vec<Machine>,
    listeners: Vec<TcpListener>,
) -> std::io::Result<actix_web::dev::Server> {
    let mut by_port = HashMap::new();
    for (i, (machine, listener)) in machines.iter().zip(&listeners).enumerate() {
        let addr = listener.local_addr()?;
        machine.set_bmc_addr(addr);
        by_port.insert(addr.port(), i);
    }
    let state = web::Data::new(BmcState {
        machines,
        by_port,
        sessions: Mutex::new(HashMap::new()),
    });
    let mut server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(state.clone())
            .app_data(web::JsonConfig::default().error_handler(|err, _req| {
                let message = format!("invalid JSON body: {err}");
                actix_web::error::InternalError::from_response(
                    err,
                    redfish_error(StatusCode::BAD_REQUEST, "Base.1.0.MalformedJSON", &message),
                )
                .into()
            }))
            .wrap(actix_web::middleware::NormalizePath::trim())
            .route("/redfish", web::get().to(versions))
            .route("/redfish/v1", web::get().to(root))
            .route("/redfish/v1/Systems", web::get().to(systems))
            .route("/redfish/v1/Systems/{id}", web::get().to(system))
            .route("/redfish/v1/Systems/{id}", web::patch().to(patch_system))
            .route(
                "/redfish/v1/Systems/{id}/Actions/ComputerSystem.Reset",
                web::post().to(reset),
            )
            .route(
                "/redfish/v1/Systems/{id}/EthernetInterfaces",
                web::get().to(nics),
            )
            .route(
                "/redfish/v1/Systems/{id}/EthernetInterfaces/{nic}",
                web::get().to(nic),
            )
            .route("/redfish/v1/Managers", web::get().to(managers))
            .route("/redfish/v1/Managers/{id}", web::get().to(manager))
            .route("/redfish/v1/Chassis", web::get().to(chassis_collection))
            .route("/redfish/v1/Chassis/{id}", web::get().to(chassis))
            .route("/redfish/v1/SessionService", web::get().to(session_service))
            .route(
                "/redfish/v1/SessionService/Sessions",
                web::get().to(sessions),
            )
            .route(
                "/redfish/v1/SessionService/Sessions",
                web::post().to(create_session),
            )
            .route(
                "/redfish/v1/SessionService/Sessions/{sid}",
                web::get().to(get_session),
            )
            .route(
                "/redfish/v1/SessionService/Sessions/{sid}",
                web::delete().to(delete_session),
            )
            .default_service(web::to(not_found))
    })
    .workers(2)
    .shutdown_timeout(2)
    .disable_signals();
    for listener in listeners {
        server = server.listen(listener)?;
    }
    Ok(server.run())
}

/// A Redfish error response as sushy-tools renders it.
pub fn redfish_error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({
        "error": {
            "code": code,
            "message": message,
            "@Message.ExtendedInfo": [{
                "@odata.type": "#Message.v1_0_0.Message",
                "MessageId": code,
                "Message": message,
            }],
        }
    }))
}

fn machine_of<'a>(req: &HttpRequest, state: &'a BmcState) -> Option<(usize, &'a Machine)> {
    let port = req.app_config().local_addr().port();
    let index = *state.by_port.get(&port)?;
    state.machines.get(index).map(|m| (index, m))
}

/// The machine this BMC manages, after authentication.
fn authorized<'a>(req: &HttpRequest, state: &'a BmcState) -> Result<&'a Machine, HttpResponse> {
    let Some((index, machine)) = machine_of(req, state) else {
        return Err(redfish_error(
            StatusCode::NOT_FOUND,
            "Base.1.0.GeneralError",
            "no BMC on this port",
        ));
    };
    if let Some(token) = req
        .headers()
        .get("X-Auth-Token")
        .and_then(|v| v.to_str().ok())
    {
        let sessions = state
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if sessions.get(token).is_some_and(|(_, i)| *i == index) {
            return Ok(machine);
        }
    }
    let basic = req
        .headers()
        .get("Authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then_some(rest.trim())
        })
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .and_then(|raw| String::from_utf8(raw).ok());
    if let Some(pair) = basic {
        if let Some((user, password)) = pair.split_once(':') {
            let spec = machine.spec();
            if user == spec.username && password == spec.password {
                return Ok(machine);
            }
        }
    }
    let mut response = redfish_error(
        StatusCode::UNAUTHORIZED,
        "Base.1.0.InsufficientPrivilege",
        "authentication required: HTTP Basic with the BMC's credentials or an X-Auth-Token",
    );
    response.headers_mut().insert(
        actix_web::http::header::WWW_AUTHENTICATE,
        actix_web::http::header::HeaderValue::from_static("Basic realm=\"Ferrite BMC\""),
    );
    Err(response)
}

fn check_id(machine: &Machine, id: &str) -> Result<(), HttpResponse> {
    if id == machine.uuid() || id == machine.name() {
        Ok(())
    } else {
        Err(redfish_error(
            StatusCode::NOT_FOUND,
            "Base.1.0.ResourceMissingAtURI",
            &format!("system {id} was not found"),
        ))
    }
}

fn ok(body: Value) -> HttpResponse {
    HttpResponse::Ok().json(body)
}

fn status_ok() -> Value {
    json!({"State": "Enabled", "Health": "OK", "HealthRollUp": "OK"})
}

fn collection(kind: &str, name: &str, path: &str, members: &[String]) -> Value {
    json!({
        "@odata.type": format!("#{kind}.{kind}"),
        "@odata.id": path,
        "Name": name,
        "Members@odata.count": members.len(),
        "Members": members.iter().map(|m| json!({"@odata.id": m})).collect::<Vec<_>>(),
    })
}

async fn versions() -> HttpResponse {
    ok(json!({"v1": "/redfish/v1/"}))
}

/// The service root needs no authentication (DSP0266).
async fn root(req: HttpRequest, state: web::Data<BmcState>) -> HttpResponse {
    let uuid = machine_of(&req, &state)
        .map(|(_, m)| m.uuid().to_string())
        .unwrap_or_default();
    ok(json!({
        "@odata.type": "#ServiceRoot.v1_5_0.ServiceRoot",
        "@odata.id": "/redfish/v1/",
        "Id": "FerriteBMC",
        "Name": "Ferrite simulated BMC",
        "RedfishVersion": "1.5.0",
        "UUID": uuid,
        "Systems": {"@odata.id": "/redfish/v1/Systems"},
        "Managers": {"@odata.id": "/redfish/v1/Managers"},
        "Chassis": {"@odata.id": "/redfish/v1/Chassis"},
        "SessionService": {"@odata.id": "/redfish/v1/SessionService"},
        "Links": {"Sessions": {"@odata.id": "/redfish/v1/SessionService/Sessions"}},
    }))
}

async fn systems(req: HttpRequest, state: web::Data<BmcState>) -> HttpResponse {
    match authorized(&req, &state) {
        Ok(m) => ok(collection(
            "ComputerSystemCollection",
            "Computer System Collection",
            "/redfish/v1/Systems",
            &[format!("/redfish/v1/Systems/{}", m.uuid())],
        )),
        Err(r) => r,
    }
}

/// The system resource of `machine`.
pub fn system_json(machine: &Machine) -> Value {
    let uuid = machine.uuid();
    let hw = machine.hardware();
    let boot = machine.boot_override();
    let state = machine.state();
    let mut oem = json!({
        "MachineState": state.name(),
        "BootCount": machine.boot_count(),
    });
    match &state {
        MachineState::AgentRunning { callback_url } => {
            oem["CallbackUrl"] = json!(callback_url);
        }
        MachineState::BootFailed(reason) | MachineState::NetbootFailed(reason) => {
            oem["Reason"] = json!(reason);
        }
        _ => {}
    }
    let path = format!("/redfish/v1/Systems/{uuid}");
    json!({
        "@odata.type": "#ComputerSystem.v1_13_0.ComputerSystem",
        "@odata.id": path,
        "Id": uuid,
        "Name": machine.name(),
        "UUID": uuid,
        "Manufacturer": hw.system_vendor.manufacturer,
        "Model": hw.system_vendor.product_name,
        "SerialNumber": hw.system_vendor.serial_number,
        "SystemType": "Physical",
        "Status": status_ok(),
        "PowerState": if state.is_on() { "On" } else { "Off" },
        "Boot": {
            "BootSourceOverrideEnabled": boot.enabled,
            "BootSourceOverrideTarget": boot.target,
            "BootSourceOverrideTarget@Redfish.AllowableValues": BOOT_TARGETS,
            "BootSourceOverrideMode": boot.mode.redfish(),
            "BootSourceOverrideMode@Redfish.AllowableValues": ["UEFI", "Legacy"],
        },
        "ProcessorSummary": {
            "Count": hw.cpu.count,
            "Model": hw.cpu.model_name,
            "Status": status_ok(),
        },
        "MemorySummary": {
            "TotalSystemMemoryGiB": hw.memory_mb as f64 / 1024.0,
            "Status": status_ok(),
        },
        "EthernetInterfaces": {"@odata.id": format!("{path}/EthernetInterfaces")},
        "Links": {
            "Chassis": [{"@odata.id": format!("/redfish/v1/Chassis/{uuid}")}],
            "ManagedBy": [{"@odata.id": format!("/redfish/v1/Managers/{uuid}")}],
        },
        "Actions": {
            "#ComputerSystem.Reset": {
                "target": format!("{path}/Actions/ComputerSystem.Reset"),
                "ResetType@Redfish.AllowableValues": RESET_TYPES,
            }
        },
        "Oem": {"Ferrite": oem},
    })
}

async fn system(
    req: HttpRequest,
    state: web::Data<BmcState>,
    id: web::Path<String>,
) -> HttpResponse {
    let machine = match authorized(&req, &state) {
        Ok(m) => m,
        Err(r) => return r,
    };
    if let Err(r) = check_id(machine, &id) {
        return r;
    }
    ok(system_json(machine))
}

fn not_in_list(property: &str, value: &Value, allowed: &[&str]) -> HttpResponse {
    redfish_error(
        StatusCode::BAD_REQUEST,
        "Base.1.0.PropertyValueNotInList",
        &format!(
            "the value {value} for the property {property} is not in the list of acceptable values ({})",
            allowed.join(", ")
        ),
    )
}

async fn patch_system(
    req: HttpRequest,
    state: web::Data<BmcState>,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> HttpResponse {
    let machine = match authorized(&req, &state) {
        Ok(m) => m,
        Err(r) => return r,
    };
    if let Err(r) = check_id(machine, &id) {
        return r;
    }
    let Some(boot) = body.get("Boot").and_then(Value::as_object) else {
        return redfish_error(
            StatusCode::BAD_REQUEST,
            "Base.1.0.PropertyMissing",
            "PATCH of a system only supports the Boot object",
        );
    };
    let field = |name: &str, allowed: &[&str]| -> Result<Option<String>, HttpResponse> {
        match boot.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v.as_str() {
                Some(s) if allowed.contains(&s) => Ok(Some(s.to_string())),
                _ => Err(not_in_list(name, v, allowed)),
            },
        }
    };
    let parsed = (|| {
        Ok::<_, HttpResponse>((
            field("BootSourceOverrideTarget", BOOT_TARGETS)?,
            field("BootSourceOverrideEnabled", BOOT_ENABLED)?,
            field("BootSourceOverrideMode", &["UEFI", "Legacy"])?,
        ))
    })();
    let (target, enabled, mode) = match parsed {
        Ok(p) => p,
        Err(r) => return r,
    };
    if target.is_none() && enabled.is_none() && mode.is_none() {
        return redfish_error(
            StatusCode::BAD_REQUEST,
            "Base.1.0.PropertyMissing",
            "the Boot object needs BootSourceOverrideTarget, BootSourceOverrideEnabled and/or BootSourceOverrideMode",
        );
    }
    let mode = mode.as_deref().and_then(BootMode::from_redfish);
    machine.set_boot_override(target.as_deref(), enabled.as_deref(), mode);
    HttpResponse::NoContent().finish()
}

async fn reset(
    req: HttpRequest,
    state: web::Data<BmcState>,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> HttpResponse {
    let machine = match authorized(&req, &state) {
        Ok(m) => m,
        Err(r) => return r,
    };
    if let Err(r) = check_id(machine, &id) {
        return r;
    }
    let Some(value) = body.get("ResetType") else {
        return redfish_error(
            StatusCode::BAD_REQUEST,
            "Base.1.0.ActionParameterMissing",
            "the action ComputerSystem.Reset requires the parameter ResetType",
        );
    };
    let reset_type = match value.as_str() {
        Some(s) if RESET_TYPES.contains(&s) => s,
        _ => {
            return redfish_error(
                StatusCode::BAD_REQUEST,
                "Base.1.0.ActionParameterValueNotInList",
                &format!(
                    "the value {value} for the parameter ResetType is not in the list of acceptable values ({})",
                    RESET_TYPES.join(", ")
                ),
            )
        }
    };
    match reset_type {
        "On" | "ForceOn" => machine.power_on().await,
        "ForceOff" | "GracefulShutdown" => machine.power_off().await,
        "GracefulRestart" | "ForceRestart" => machine.restart().await,
        "PushPowerButton" => {
            if machine.state().is_on() {
                machine.power_off().await;
            } else {
                machine.power_on().await;
            }
        }
        // Nmi: nothing to interrupt in a simulated machine.
        _ => {}
    }
    HttpResponse::NoContent().finish()
}

async fn nics(req: HttpRequest, state: web::Data<BmcState>, id: web::Path<String>) -> HttpResponse {
    let machine = match authorized(&req, &state) {
        Ok(m) => m,
        Err(r) => return r,
    };
    if let Err(r) = check_id(machine, &id) {
        return r;
    }
    let path = format!("/redfish/v1/Systems/{}/EthernetInterfaces", machine.uuid());
    let members: Vec<String> = machine
        .hardware()
        .interfaces
        .iter()
        .map(|n| format!("{path}/{}", n.name))
        .collect();
    ok(collection(
        "EthernetInterfaceCollection",
        "Ethernet Interface Collection",
        &path,
        &members,
    ))
}

async fn nic(
    req: HttpRequest,
    state: web::Data<BmcState>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let machine = match authorized(&req, &state) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let (id, name) = path.into_inner();
    if let Err(r) = check_id(machine, &id) {
        return r;
    }
    let Some(nic) = machine
        .hardware()
        .interfaces
        .iter()
        .find(|n| n.name == name)
    else {
        return not_found(req).await;
    };
    ok(json!({
        "@odata.type": "#EthernetInterface.v1_4_0.EthernetInterface",
        "@odata.id": format!("/redfish/v1/Systems/{}/EthernetInterfaces/{}", machine.uuid(), nic.name),
        "Id": nic.name,
        "Name": nic.name,
        "MACAddress": nic.mac_address,
        "PermanentMACAddress": nic.mac_address,
        "LinkStatus": if nic.has_carrier { "LinkUp" } else { "LinkDown" },
        "Status": {"State": "Enabled", "Health": "OK"},
    }))
}

async fn managers(req: HttpRequest, state: web::Data<BmcState>) -> HttpResponse {
    match authorized(&req, &state) {
        Ok(m) => ok(collection(
            "ManagerCollection",
            "Manager Collection",
            "/redfish/v1/Managers",
            &[format!("/redfish/v1/Managers/{}", m.uuid())],
        )),
        Err(r) => r,
    }
}

async fn manager(
    req: HttpRequest,
    state: web::Data<BmcState>,
    id: web::Path<String>,
) -> HttpResponse {
    let machine = match authorized(&req, &state) {
        Ok(m) => m,
        Err(r) => return r,
    };
    if let Err(r) = check_id(machine, &id) {
        return r;
    }
    let uuid = machine.uuid();
    ok(json!({
        "@odata.type": "#Manager.v1_3_1.Manager",
        "@odata.id": format!("/redfish/v1/Managers/{uuid}"),
        "Id": uuid,
        "Name": format!("{}-Manager", machine.name()),
        "UUID": uuid,
        "ManagerType": "BMC",
        "Model": "Ferrite simulated BMC",
        "FirmwareVersion": env!("CARGO_PKG_VERSION"),
        "PowerState": "On",
        "Status": {"State": "Enabled", "Health": "OK"},
        "Links": {
            "ManagerForServers": [{"@odata.id": format!("/redfish/v1/Systems/{uuid}")}],
            "ManagerForChassis": [{"@odata.id": format!("/redfish/v1/Chassis/{uuid}")}],
        },
    }))
}

async fn chassis_collection(req: HttpRequest, state: web::Data<BmcState>) -> HttpResponse {
    match authorized(&req, &state) {
        Ok(m) => ok(collection(
            "ChassisCollection",
            "Chassis Collection",
            "/redfish/v1/Chassis",
            &[format!("/redfish/v1/Chassis/{}", m.uuid())],
        )),
        Err(r) => r,
    }
}

async fn chassis(
    req: HttpRequest,
    state: web::Data<BmcState>,
    id: web::Path<String>,
) -> HttpResponse {
    let machine = match authorized(&req, &state) {
        Ok(m) => m,
        Err(r) => return r,
    };
    if let Err(r) = check_id(machine, &id) {
        return r;
    }
    let uuid = machine.uuid();
    ok(json!({
        "@odata.type": "#Chassis.v1_5_0.Chassis",
        "@odata.id": format!("/redfish/v1/Chassis/{uuid}"),
        "Id": uuid,
        "Name": "Chassis",
        "UUID": uuid,
        "ChassisType": "RackMount",
        "PowerState": if machine.state().is_on() { "On" } else { "Off" },
        "Status": {"State": "Enabled", "Health": "OK"},
        "Links": {
            "ComputerSystems": [{"@odata.id": format!("/redfish/v1/Systems/{uuid}")}],
            "ManagedBy": [{"@odata.id": format!("/redfish/v1/Managers/{uuid}")}],
        },
    }))
}

async fn session_service(req: HttpRequest, state: web::Data<BmcState>) -> HttpResponse {
    if let Err(r) = authorized(&req, &state) {
        return r;
    }
    ok(json!({
        "@odata.type": "#SessionService.v1_1_6.SessionService",
        "@odata.id": "/redfish/v1/SessionService",
        "Id": "SessionService",
        "Name": "Session Service",
        "ServiceEnabled": true,
        "SessionTimeout": 3600,
        "Sessions": {"@odata.id": "/redfish/v1/SessionService/Sessions"},
        "Status": {"State": "Enabled", "Health": "OK"},
    }))
}

async fn sessions(req: HttpRequest, state: web::Data<BmcState>) -> HttpResponse {
    let Some((index, _)) = machine_of(&req, &state) else {
        return not_found(req).await;
    };
    if let Err(r) = authorized(&req, &state) {
        return r;
    }
    let members: Vec<String> = state
        .sessions
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .values()
        .filter(|(_, i)| *i == index)
        .map(|(sid, _)| format!("/redfish/v1/SessionService/Sessions/{sid}"))
        .collect();
    ok(collection(
        "SessionCollection",
        "Session Collection",
        "/redfish/v1/SessionService/Sessions",
        &members,
    ))
}

/// Session login: the credentials are in the body, no other auth needed.
async fn create_session(
    req: HttpRequest,
    state: web::Data<BmcState>,
    body: web::Json<Value>,
) -> HttpResponse {
    let Some((index, machine)) = machine_of(&req, &state) else {
        return not_found(req).await;
    };
    let user = body.get("UserName").and_then(Value::as_str);
    let password = body.get("Password").and_then(Value::as_str);
    let spec = machine.spec();
    if user != Some(spec.username.as_str()) || password != Some(spec.password.as_str()) {
        return redfish_error(
            StatusCode::UNAUTHORIZED,
            "Base.1.0.NoValidSession",
            "invalid UserName or Password",
        );
    }
    let sid = uuid::Uuid::new_v4().simple().to_string();
    let token = uuid::Uuid::new_v4().simple().to_string();
    state
        .sessions
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(token.clone(), (sid.clone(), index));
    let location = format!("/redfish/v1/SessionService/Sessions/{sid}");
    HttpResponse::Created()
        .insert_header(("X-Auth-Token", token))
        .insert_header(("Location", location.clone()))
        .json(session_json(&sid, &spec.username))
}

fn session_json(sid: &str, user: &str) -> Value {
    json!({
        "@odata.type": "#Session.v1_0_0.Session",
        "@odata.id": format!("/redfish/v1/SessionService/Sessions/{sid}"),
        "Id": sid,
        "Name": "User Session",
        "UserName": user,
    })
}

fn find_session(state: &BmcState, index: usize, sid: &str) -> Option<String> {
    state
        .sessions
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .find(|(_, (s, i))| s == sid && *i == index)
        .map(|(token, _)| token.clone())
}

async fn get_session(
    req: HttpRequest,
    state: web::Data<BmcState>,
    sid: web::Path<String>,
) -> HttpResponse {
    let machine = match authorized(&req, &state) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let index = machine_of(&req, &state).map_or(usize::MAX, |(i, _)| i);
    match find_session(&state, index, &sid) {
        Some(_) => ok(session_json(&sid, &machine.spec().username)),
        None => not_found(req).await,
    }
}

async fn delete_session(
    req: HttpRequest,
    state: web::Data<BmcState>,
    sid: web::Path<String>,
) -> HttpResponse {
    if let Err(r) = authorized(&req, &state) {
        return r;
    }
    let index = machine_of(&req, &state).map_or(usize::MAX, |(i, _)| i);
    match find_session(&state, index, &sid) {
        Some(token) => {
            state
                .sessions
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&token);
            HttpResponse::NoContent().finish()
        }
        None => not_found(req).await,
    }
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    redfish_error(
        StatusCode::NOT_FOUND,
        "Base.1.0.ResourceMissingAtURI",
        &format!("the resource at the URI {} was not found", req.path()),
    )
}
