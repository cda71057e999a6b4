//! Seed 001 transaction files made up for load: the e2e test that cuts
//! RabbitMQ during a big upload and the pipeline benchmark send the same.

/// A JSON array of `n` valid, unique, unsuspicious records (no fraud rule
/// flags any of them).
pub fn generated(n: usize) -> Vec<u8> {
    let records: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "_id": format!("gen{i}"),
                "isActive": true,
                "cliente": format!("Cliente {i}"),
                "email": format!("cliente{i}@example.com"),
                "endereco": format!("Cidade {}, Estado {}, {}", i % 97, i % 27, 1000 + i),
                "datatrasancao": "2024-03-11T12:00:00 +00:00",
            })
        })
        .collect();
    serde_json::to_vec(&records).expect("serializable")
}
