//! The catalog: names, kinds, columns and definitions of tables and views, and what depends
//! on what. It lives with the coordinator; workers only know ids.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::plan::{GlobalId, Plan};
use crate::schema::Schema;
use crate::sql::{ItemKind, Resolver};

#[derive(Clone, Debug)]
pub struct CatalogItem {
    pub id: GlobalId,
    pub name: String,
    pub kind: ItemKind,
    pub schema: Schema,
    /// The SQL that defined it (views).
    pub definition: Option<String>,
    pub plan: Option<Plan>,
    pub dependencies: Vec<GlobalId>,
    pub primary_key: Vec<usize>,
    pub created_at: u64,
    /// What a source reads, or a sink writes.
    pub source: Option<crate::connector::SourceSpec>,
    pub sink: Option<crate::connector::SinkSpec>,
    /// What an index arranges, and by which columns.
    pub index: Option<crate::plan::index::IndexOn>,
}

/// A catalog entry as the API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct ItemDescription {
    pub name: String,
    pub kind: &'static str,
    pub columns: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub definition: Option<String>,
    pub depends_on: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub primary_key: Vec<String>,
    /// Sources and sinks: what they read or write, and how it is going.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
    /// An index: the item it arranges.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on: Option<String>,
}

#[derive(Default)]
pub struct Catalog {
    items: BTreeMap<GlobalId, CatalogItem>,
    by_name: BTreeMap<String, GlobalId>,
    next_id: GlobalId,
}

impl Catalog {
    pub fn allocate_id(&mut self) -> GlobalId {
        self.next_id += 1;
        self.next_id
    }

    pub fn get(&self, id: GlobalId) -> Option<&CatalogItem> {
        self.items.get(&id)
    }

    pub fn get_mut(&mut self, id: GlobalId) -> Option<&mut CatalogItem> {
        self.items.get_mut(&id)
    }

    /// Event-time sources that `ids` read, directly or through views.
    pub fn event_time_sources(&self, ids: &[GlobalId]) -> Vec<GlobalId> {
        self.sources_under(ids, true)
    }

    /// Sources that `ids` read, directly or through views (only event-time ones if asked).
    pub fn sources_under(&self, ids: &[GlobalId], event_time_only: bool) -> Vec<GlobalId> {
        let mut out = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        let mut todo: Vec<GlobalId> = ids.to_vec();
        while let Some(id) = todo.pop() {
            if !seen.insert(id) {
                continue;
            }
            if let Some(item) = self.items.get(&id) {
                if item
                    .source
                    .as_ref()
                    .is_some_and(|s| !event_time_only || s.event_time.is_some())
                {
                    out.push(id);
                }
                todo.extend(item.dependencies.iter().copied());
            }
        }
        out
    }

    /// The item called exactly `name` (SQL resolves names this way, as PostgreSQL does).
    pub fn by_exact_name(&self, name: &str) -> Option<&CatalogItem> {
        self.by_name.get(name).and_then(|id| self.items.get(id))
    }

    /// The item called `name`, or else the only one whose name differs just in case: what the
    /// HTTP API uses for names in paths (`/v1/views/Orders` finds `orders`).
    pub fn by_name(&self, name: &str) -> Option<&CatalogItem> {
        if let Some(item) = self.by_exact_name(name) {
            return Some(item);
        }
        let mut matches = self
            .by_name
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name));
        match (matches.next(), matches.next()) {
            (Some((_, id)), None) => self.items.get(id),
            _ => None,
        }
    }

    pub fn insert(&mut self, item: CatalogItem) -> Result<()> {
        if let Some(kind) = self.by_exact_name(&item.name).map(|e| e.kind) {
            // Ids must not depend on failed statements: replay after a restart runs only
            // the ones that succeeded and must hand out the same ids.
            if item.id == self.next_id {
                self.next_id -= 1;
            }
            let existing = CatalogItem {
                kind,
                ..item.clone()
            };
            return Err(Error::AlreadyExists {
                kind: existing.kind.name(),
                name: item.name,
            });
        }
        self.by_name.insert(item.name.clone(), item.id);
        self.items.insert(item.id, item);
        Ok(())
    }

    pub fn remove(&mut self, id: GlobalId) -> Option<CatalogItem> {
        let item = self.items.remove(&id)?;
        self.by_name.remove(&item.name);
        Some(item)
    }

    /// Items that read `id` directly.
    pub fn dependents(&self, id: GlobalId) -> Vec<GlobalId> {
        self.items
            .values()
            .filter(|i| i.dependencies.contains(&id))
            .map(|i| i.id)
            .collect()
    }

    /// `id` and everything that depends on it, dependents first (the order to drop in).
    pub fn drop_order(&self, id: GlobalId) -> Vec<GlobalId> {
        let mut out = Vec::new();
        self.collect_dependents(id, &mut out);
        out
    }

    fn collect_dependents(&self, id: GlobalId, out: &mut Vec<GlobalId>) {
        for d in self.dependents(id) {
            self.collect_dependents(d, out);
        }
        if !out.contains(&id) {
            out.push(id);
        }
    }

    pub fn items(&self) -> impl Iterator<Item = &CatalogItem> {
        self.items.values()
    }

    /// Every index, with its id.
    pub fn indexes(&self) -> Vec<(GlobalId, crate::plan::index::IndexOn)> {
        self.items
            .values()
            .filter_map(|i| i.index.clone().map(|ix| (i.id, ix)))
            .collect()
    }

    pub fn describe(&self, item: &CatalogItem) -> ItemDescription {
        // An index shows the columns it is keyed by (its rows hold the item's columns after).
        let columns = match &item.index {
            Some(ix) => Schema::new(item.schema.columns[..ix.columns.len()].to_vec()).to_json(),
            None => item.schema.to_json(),
        };
        ItemDescription {
            name: item.name.clone(),
            kind: item.kind.name(),
            columns,
            definition: item.definition.clone(),
            depends_on: item
                .dependencies
                .iter()
                .filter_map(|d| self.get(*d))
                .map(|d| d.name.clone())
                .collect(),
            primary_key: item
                .primary_key
                .iter()
                .map(|i| item.schema.columns[*i].name.clone())
                .collect(),
            connector: item
                .source
                .as_ref()
                .map(|s| connector_json(&s.transport, s.format, &s.options))
                .or_else(|| {
                    item.sink
                        .as_ref()
                        .map(|s| connector_json(&s.transport, Some(s.format), &s.options))
                }),
            status: None,
            on: item
                .index
                .as_ref()
                .and_then(|ix| self.get(ix.on))
                .map(|on| on.name.clone()),
        }
    }
}

/// How the catalog shows a source's or sink's transport, format and options.
fn connector_json(
    transport: &crate::connector::Transport,
    format: Option<crate::connector::Format>,
    options: &std::collections::BTreeMap<String, String>,
) -> serde_json::Value {
    use crate::connector::Transport;
    let mut v = serde_json::json!({ "type": transport.name() });
    match transport {
        Transport::File { path } => v["path"] = path.clone().into(),
        Transport::Kafka { brokers, topic } => {
            v["brokers"] = brokers.clone().into();
            v["topic"] = topic.clone().into();
        }
        Transport::Generator { kind } => v["generator"] = kind.clone().into(),
    }
    if let Some(f) = format {
        v["format"] = format!("{f:?}").to_ascii_lowercase().into();
    }
    if !options.is_empty() {
        v["options"] = serde_json::to_value(options).unwrap_or_default();
    }
    v
}

impl Resolver for Catalog {
    /// Relations a query can read: tables, views and sources (not sinks, not indexes).
    fn resolve(&self, name: &str) -> Option<(GlobalId, Schema)> {
        self.by_exact_name(name)
            .filter(|i| !matches!(i.kind, ItemKind::Sink | ItemKind::Index))
            .map(|i| (i.id, i.schema.clone()))
    }

    fn unreadable(&self, name: &str) -> Option<String> {
        let item = self.by_exact_name(name)?;
        let what = match item.kind {
            ItemKind::Index => "an index; read the relation it indexes",
            ItemKind::Sink => "a sink; read the relation it writes from",
            _ => return None,
        };
        Some(format!("\"{name}\" is {what} instead"))
    }
}
