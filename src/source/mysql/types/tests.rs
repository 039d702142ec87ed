use super::*;

fn corpus(name: &str) -> Vec<u8> {
    let path = format!("{}/fuzz/corpus/binlog/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn dump_captured() {
    let data = corpus("mariadb_10_11_all_types");
    decode_stream(&data, &TypeOptions::default(), |m, b, a| {
        eprintln!("{} {:?}\n  before {:?}\n  after {:?}", m.table, m.optional.names, b, a);
    })
    .unwrap();
}
