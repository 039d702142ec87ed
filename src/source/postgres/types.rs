//! PostgreSQL column types. The decoding of values (type resolution, text parsing) is the
//! codec's ([`cdc_codec::postgres::types`], re-exported here); what stays in the agent is the
//! catalog SQL that loads the [`CatalogRow`]s a [`TypeCatalog`] is built from.

pub use cdc_codec::postgres::types::*;

/// Loads the catalog rows a [`TypeCatalog`] needs for the type oids in `$1` (an `oid[]`, e.g.
/// the column types of a Relation message or of the tables to snapshot) plus, recursively,
/// their array element types and domain base types. Columns, in order, map onto
/// [`CatalogRow`]: `oid oid, typname text, nspname text, typtype text, typcategory text,
/// typelem oid, typbasetype oid, typtypmod int4, typdelim text, enum_labels text[]`.
/// Built-in oids need no rows (they are known here), but loading them is harmless.
pub const CATALOG_QUERY: &str = "\
WITH RECURSIVE wanted(oid) AS (
    SELECT unnest($1::oid[])
  UNION
    SELECT next.oid
    FROM pg_catalog.pg_type t
    JOIN wanted w ON t.oid = w.oid
    CROSS JOIN LATERAL (VALUES (t.typelem), (t.typbasetype)) AS next(oid)
    WHERE next.oid <> 0
)
SELECT t.oid,
       t.typname::text,
       n.nspname::text,
       t.typtype::text,
       t.typcategory::text,
       t.typelem,
       t.typbasetype,
       t.typtypmod,
       t.typdelim::text,
       COALESCE((SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
                 FROM pg_catalog.pg_enum e
                 WHERE e.enumtypid = t.oid), '{}'::text[]) AS enum_labels
FROM pg_catalog.pg_type t
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
WHERE t.oid IN (SELECT oid FROM wanted)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_query_takes_the_type_oids_as_one_array_parameter() {
        assert!(CATALOG_QUERY.contains("$1::oid[]"));
    }
}
