//! `POST /reshaper` (1.30+): move inventories and allocations together,
//! atomically — all of it lands or none of it does.

use std::collections::BTreeMap;

use crate::error::{codes, ApiError, ApiResult};
use crate::handlers::allocations::{consumer_write, shape, write_error};
use crate::handlers::inventories::{from_body, replace_in_tx};
use crate::http::{Reply, Req};
use crate::schema;
use crate::storage::allocations as store;
use crate::storage::providers::{self, Inventory};
use crate::storage::WriteTx;
use crate::AppState;

/// Sets a provider's inventories inside `tx` and bumps its generation.
async fn set_inventory(
    tx: &WriteTx,
    uuid: &str,
    wanted: &BTreeMap<String, Inventory>,
) -> ApiResult<()> {
    let provider = providers::get_by_uuid(&**tx, uuid).await?.ok_or_else(|| {
        ApiError::bad_request(format!(
            "malformed reshaper data: No resource provider with uuid {uuid} found"
        ))
    })?;
    replace_in_tx(tx, &provider, wanted)
        .await
        .map_err(|err| match err.status {
            409 => ApiError::conflict(format!("update conflict: {}", err.detail))
                .with_code(codes::INVENTORY_INUSE),
            400 => match err.detail.split_once(": ") {
                Some((_, why)) => ApiError::bad_request(format!("malformed reshaper data: {why}")),
                None => err,
            },
            _ => err,
        })?;
    if !providers::bump_generation(&**tx, provider.id, provider.generation).await? {
        return Err(ApiError::concurrent_update(
            "update conflict: Another thread concurrently updated the resource provider data. Please retry your update",
        ));
    }
    Ok(())
}

pub async fn reshape(state: &AppState, req: &Req) -> ApiResult<Reply> {
    req.require_json()?;
    req.authorize(state, "placement:reshaper:reshape")?;
    let allocation_shape = shape(req, true);
    let body_schema = schema::reshaper(allocation_shape);
    let body = req.json_body(&body_schema)?;

    let tx = state.db.begin_write().await?;
    // Every named provider must exist at the generation the caller saw.
    let mut inventories: Vec<(String, BTreeMap<String, Inventory>)> = Vec::new();
    for (uuid, data) in body["inventories"].as_object().into_iter().flatten() {
        let uuid = uuid.to_lowercase();
        let Some(provider) = providers::get_by_uuid(&*tx, &uuid).await? else {
            return Err(ApiError::bad_request(format!(
                "Resource provider {uuid} in inventories not found: No resource provider with uuid {uuid} found"
            ))
            .with_code(codes::RESOURCE_PROVIDER_NOT_FOUND));
        };
        let given = data["resource_provider_generation"].as_i64().unwrap_or(-1);
        if given != provider.generation {
            return Err(ApiError::concurrent_update(format!(
                "resource provider generation conflict for provider {uuid}: actual: {}, given: {given}",
                provider.generation
            )));
        }
        let wanted: BTreeMap<String, Inventory> = data["inventories"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(class, record)| (class.clone(), from_body(class, record)))
            .collect();
        inventories.push((uuid, wanted));
    }
    let writes: Vec<store::ConsumerWrite> = body["allocations"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(consumer, item)| {
            let consumer = uuid::Uuid::parse_str(consumer)
                .map_or_else(|_| consumer.clone(), |u| u.to_string());
            consumer_write(state, req, &consumer, item)
        })
        .collect();

    // First add and update inventories without removing anything, then move
    // the allocations, then drop the classes that are no longer wanted.
    for (uuid, wanted) in &inventories {
        if wanted.is_empty() {
            continue;
        }
        let provider = providers::get_by_uuid(&*tx, uuid)
            .await?
            .ok_or_else(ApiError::internal)?;
        let mut union: BTreeMap<String, Inventory> = providers::inventories(&*tx, provider.id)
            .await?
            .into_iter()
            .map(|i| (i.resource_class.clone(), i))
            .collect();
        union.extend(wanted.iter().map(|(k, v)| (k.clone(), v.clone())));
        set_inventory(&tx, uuid, &union).await?;
    }
    store::replace_in_tx(&*tx, &writes)
        .await
        .map_err(|err| match err {
            store::WriteError::ClassMissing(_) => {
                ApiError::bad_request(format!("malformed reshaper data: {err}"))
            }
            store::WriteError::Concurrent => {
                ApiError::concurrent_update(format!("update conflict: {err}"))
            }
            other => write_error(other, String::new()),
        })?;
    for (uuid, wanted) in &inventories {
        set_inventory(&tx, uuid, wanted).await?;
    }
    tx.commit().await?;
    Ok(Reply::empty(204))
}
