//! `message_stats`: the counts and rates of `warren_broker::stats` in RabbitMQ's JSON shape,
//! `{"publish": 10, "publish_details": {"rate": 2.0}, ...}`. Only the figures an object has
//! seen are shown, as RabbitMQ shows only the events it has had; `deliver_get` is deliveries
//! and gets of every kind together. Rates are per second over the last sample (5 s).

use serde_json::{Map, Value, json};
use warren_broker::stats::{Counts, MessageStats, Rates};

/// What a queue shows.
pub const QUEUE: &[&str] = &["publish", "deliver", "deliver_no_ack", "get", "get_no_ack", "ack", "redeliver"];
/// What an exchange shows.
pub const EXCHANGE: &[&str] = &["publish_in", "publish_out"];
/// What the overview shows (the broker's totals).
pub const OVERVIEW: &[&str] = &[
    "publish",
    "confirm",
    "deliver",
    "deliver_no_ack",
    "get",
    "get_no_ack",
    "ack",
    "redeliver",
    "return_unroutable",
    "drop_unroutable",
];

/// The `message_stats` of one object, with the figures `names`.
pub fn of_object(stats: &MessageStats, names: &[&str]) -> Value {
    let figures = stats.counters().into_iter().map(|(name, c)| (name, c.get(), c.rate()));
    render(figures, names)
}

/// The `message_stats` of the broker's totals, with the rates of the last sample.
pub fn of_totals(counts: &Counts, rates: &Rates, names: &[&str]) -> Value {
    let rate = |name: &str| rates.iter().find(|(n, _)| *n == name).map_or(0.0, |(_, r)| *r);
    render(counts.fields().into_iter().map(|(name, count)| (name, count, rate(name))), names)
}

fn render(figures: impl Iterator<Item = (&'static str, u64, f64)>, names: &[&str]) -> Value {
    let mut out = Map::new();
    let (mut deliver_get, mut deliver_get_rate, mut delivery_kinds) = (0u64, 0.0, false);
    for (name, count, rate) in figures.filter(|(name, ..)| names.contains(name)) {
        if matches!(name, "deliver" | "deliver_no_ack" | "get" | "get_no_ack") {
            delivery_kinds = true;
            deliver_get += count;
            deliver_get_rate += rate;
        }
        if count > 0 {
            out.insert(name.into(), json!(count));
            out.insert(format!("{name}_details"), json!({"rate": rate}));
        }
    }
    if delivery_kinds && deliver_get > 0 {
        out.insert("deliver_get".into(), json!(deliver_get));
        out.insert("deliver_get_details".into(), json!({"rate": deliver_get_rate}));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_moved_with_rates_and_deliver_get() {
        let s = MessageStats::default();
        s.publish.add(10);
        s.deliver.add(3);
        s.get_no_ack.add(2);
        s.sample(5.0);
        let v = of_object(&s, QUEUE);
        assert_eq!(v["publish"], 10);
        assert_eq!(v["publish_details"]["rate"], 2.0);
        assert_eq!(v["deliver_get"], 5);
        assert_eq!(v["deliver_get_details"]["rate"], 1.0);
        assert!(v.get("ack").is_none(), "no acks yet: not shown");
        assert!(v.get("publish_in").is_none(), "not a queue's figure");
        assert_eq!(of_object(&MessageStats::default(), QUEUE), json!({}));
    }

    #[test]
    fn totals_take_the_rates_given() {
        let counts = Counts { publish: 7, confirm: 7, ..Counts::default() };
        let v = of_totals(&counts, &vec![("publish", 1.5)], OVERVIEW);
        assert_eq!(v["publish"], 7);
        assert_eq!(v["publish_details"]["rate"], 1.5);
        assert_eq!(v["confirm_details"]["rate"], 0.0);
        assert!(v.get("deliver_get").is_none());
    }
}
