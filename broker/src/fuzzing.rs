//! The drivers of the fuzz targets in `fuzz/`, shared with their stable replay
//! (`tests/fuzz_corpus.rs`), so that a corpus file runs through the same code in both.
//!
//! Each driver takes arbitrary bytes, must never panic, and asserts what the code under test
//! promises on any input:
//! - [`frame_decoder`]: `codec::read_frame` consumes whole frames of at most `frame_max`
//!   payload octets, makes progress on every frame or error, and never waits for (or reserves
//!   room for) a frame larger than `frame_max`.
//! - [`assembler`]: frames decoded from the input, in whatever order they come, go through one
//!   content `Assembler` per channel as the connection does; content that completes has exactly
//!   its declared size, within `max_message_size`.
//! - [`field_table`]: amq-protocol's field-table parser, then everything warren does with a
//!   decoded table (queue, consumer and stream arguments, redeclaration equivalence, headers
//!   exchange binding and matching, dead-lettering, content header re-encoding).

use std::collections::HashMap;
use std::sync::Arc;

use amq_protocol::frame::parsing::parse_content_header;
use amq_protocol::protocol::{AMQPClass, BasicProperties};
use amq_protocol::types::FieldTable;
use amq_protocol::types::parsing::parse_field_table;
use bytes::{Bytes, BytesMut};

use crate::channel::assembler::{Assembled, Assembler};
use crate::connection::codec::{self, FRAME_OVERHEAD, Frame, FrameError, Payloads};
use crate::error::AmqpError;

/// A fuzz target's driver: any bytes in, no panic out.
pub type Driver = fn(&[u8]);

/// The fuzz targets by name (the directory names under `fuzz/corpus/`) and their drivers.
pub const TARGETS: &[(&str, Driver)] =
    &[("frame_decoder", frame_decoder), ("assembler", assembler), ("field_table", field_table)];

/// The frame sizes the decoder is driven with: the default, the protocol's minimum, and one
/// below it (only the handshake enforces the minimum).
pub const FRAME_MAXES: [u32; 3] = [131_072, 4_096, 512];

/// Decode `data` as the frames that follow the protocol header, with each of [`FRAME_MAXES`]
/// from one buffer, then once more arriving in small chunks with small payloads copied out.
/// The frames of the first pass also go through what the broker does with a frame besides
/// dispatching it ([`check_frame`]); the other passes only check the framing.
pub fn frame_decoder(data: &[u8]) {
    decode(data, FRAME_MAXES[0], Payloads::Share, data.len(), check_frame);
    for frame_max in &FRAME_MAXES[1..] {
        decode(data, *frame_max, Payloads::Share, data.len(), drop);
    }
    decode(data, FRAME_MAXES[0], Payloads::CopySmall, 1 + data.len() % 61, drop);
}

/// Decode `data` as frames and feed them to one content assembler per channel, as the
/// connection does; odd-length inputs get a tiny `max_message_size`.
pub fn assembler(data: &[u8]) {
    let max_message_size =
        if data.len().is_multiple_of(2) { crate::BrokerConfig::default().max_message_size } else { 64 };
    let mut channels: HashMap<u16, Assembler> = HashMap::new();
    decode(data, FRAME_MAXES[0], Payloads::Share, data.len(), |frame| {
        let (frame, _refusal) = frame.split_refusal();
        let channel = match &frame {
            Frame::Method(0, _) | Frame::Header(0, ..) | Frame::Body(0, _) | Frame::Heartbeat(_) => return,
            Frame::Method(ch, _) | Frame::Header(ch, ..) | Frame::Body(ch, _) => *ch,
            Frame::Refused(..) => unreachable!("split_refusal leaves no refused frame"),
        };
        let state = channels.entry(channel).or_default();
        match state.feed(frame, max_message_size) {
            Ok(Assembled::Content(content)) => {
                assert!(matches!(state, Assembler::Idle), "assembler not idle after content");
                assert_eq!(content.body.len() as u64, content.header.body_size, "body size differs from header");
                assert!(content.header.body_size <= max_message_size, "content over max_message_size completed");
            }
            Ok(Assembled::Method(method)) => {
                assert!(matches!(state, Assembler::Idle), "assembler not idle after {method:?}");
            }
            Ok(Assembled::Pending) => {}
            Err(error) => {
                check_error(&error);
                // The channel closes; a new one starts from scratch.
                *state = Assembler::default();
            }
        }
    });
}

/// Parse `data` as a field table (its 4-octet length first, as on the wire) and use it for
/// everything warren reads tables for. Left-over bytes, if they parse as a second table, are
/// the message headers matched against the first as a headers exchange binding.
pub fn field_table(data: &[u8]) {
    let Ok((rest, table)) = parse_field_table(data) else { return };
    let headers = parse_field_table(rest).map(|(_, t)| t).unwrap_or_else(|_| table.clone());
    let what = "queue 'q' in vhost '/'";

    check(crate::queue_args::check_queue_args(&table, what));
    let args = crate::queue_args::QueueArgs::parse(&table);
    let _ = args.limited();
    check(crate::queue_args::consumer_priority(&table, what));
    for keys in [crate::args::QUEUE_DECLARE_ARGS, crate::args::EXCHANGE_DECLARE_ARGS] {
        check(crate::args::assert_equivalent(&table, &headers, what, keys));
        check(crate::args::assert_equivalent(&headers, &FieldTable::default(), what, keys));
    }
    for value in table.inner().values() {
        let _ = (crate::args::type_name(value), crate::args::as_integer(value), crate::args::as_text(value));
    }

    let _ = crate::stream::is_stream(&table);
    check(crate::stream::StartAt::from_arguments(&table, 1_700_000_000_000));
    check(crate::stream::Retention::from_arguments(&table));

    check(crate::exchange::headers::validate_binding(&table));
    let _ = crate::exchange::headers::headers_match(&table, &headers);
    let _ = crate::exchange::headers::headers_match(&headers, &table);

    // The table as message headers: dead-lettered (x-death is read from it), and its content
    // header encoded, decoded and encoded again to the same bytes.
    let properties = BasicProperties::default().with_headers(headers).with_expiration("60000".into());
    let msg = Arc::new(crate::message::Message::new(
        "x".into(),
        "rk".into(),
        properties.clone(),
        crate::message::encode_header(&properties, 3),
        Bytes::from_static(b"abc"),
    ));
    let dead = crate::dead_letter::DeadLetter {
        msg,
        queue: "q".into(),
        reason: crate::dead_letter::Reason::Rejected,
        exchange: "dlx".into(),
        routing_key: None,
    };
    for props in [properties, crate::dead_letter::dead_lettered_properties(&dead, 1_700_000_000)] {
        let encoded = crate::message::encode_header(&props, 3);
        let decoded = match parse_content_header(&encoded[..]) {
            Ok((&[], header)) => header,
            other => panic!("an encoded content header does not parse back: {other:?}"),
        };
        let again = crate::message::encode_header(&decoded.properties, decoded.body_size);
        assert_eq!(encoded, again, "content header encoding is not stable");
    }
}

/// Split `data` into frames with `read_frame`, feeding the buffer `chunk` bytes at a time, and
/// hand every decoded frame to `each`. Stops at the first error after which the connection
/// reads nothing more.
fn decode(data: &[u8], frame_max: u32, payloads: Payloads, chunk: usize, mut each: impl FnMut(Frame)) {
    let limit = frame_max as usize + FRAME_OVERHEAD;
    // What the buffer may grow to: the input plus one frame, doubled by BytesMut's growth.
    let capacity_bound = 2 * (data.len() + limit) + 128 * 1024;
    let mut buf = BytesMut::new();
    let mut rest = data;
    loop {
        let before = buf.len();
        let result = codec::read_frame(&mut buf, frame_max, payloads);
        let used = before - buf.len();
        match result {
            Ok(Some(frame)) => {
                assert!((FRAME_OVERHEAD..=limit).contains(&used), "frame of {used} octets, frame_max {frame_max}");
                match &frame {
                    Frame::Header(_, _, raw) | Frame::Body(_, raw) => assert_eq!(raw.len() + FRAME_OVERHEAD, used),
                    Frame::Heartbeat(_) => assert_eq!(used, FRAME_OVERHEAD),
                    Frame::Method(..) | Frame::Refused(..) => {}
                }
                each(frame);
            }
            Ok(None) => {
                assert_eq!(used, 0, "Ok(None) consumed {used} octets");
                if let Some(size) = buf.get(3..7) {
                    let size = u32::from_be_bytes([size[0], size[1], size[2], size[3]]);
                    assert!(size <= frame_max, "waiting for a frame of {size} octets over frame_max {frame_max}");
                }
                assert!(
                    buf.capacity() <= capacity_bound,
                    "read buffer of {} octets for {} input octets, frame_max {frame_max}",
                    buf.capacity(),
                    data.len()
                );
                if rest.is_empty() {
                    return;
                }
                let (now, later) = rest.split_at(chunk.clamp(1, rest.len()));
                buf.extend_from_slice(now);
                rest = later;
            }
            Err(FrameError::Close(error)) => {
                // The stream is still framed: the bad frame is gone and reading goes on.
                assert!((FRAME_OVERHEAD..=limit).contains(&used), "Close after {used} octets");
                check_error(&error);
            }
            Err(FrameError::Fatal(error)) => {
                check_error(&error);
                return;
            }
            Err(FrameError::Abort(reason)) => {
                assert!(!reason.is_empty());
                return;
            }
        }
    }
}

/// What the broker does with a decoded frame besides dispatching it: a frame out of place is
/// described with its method re-encoded, which must decode back to the same bytes.
fn check_frame(frame: Frame) {
    check_error(&codec::unexpected_frame(&frame));
    if let (Frame::Method(channel, method), _) = frame.split_refusal() {
        let first = encode_method(channel, &method);
        let mut buf = BytesMut::from(&first[..]);
        match codec::next_frame(&mut buf, 0) {
            Ok(Some(Frame::Method(_, decoded) | Frame::Refused(_, decoded, _))) => {
                assert_eq!(first, encode_method(channel, &decoded), "method encoding is not stable: {method:?}");
            }
            other => panic!("re-encoded {method:?} does not decode: {other:?}"),
        }
    }
}

fn encode_method(channel: u16, method: &AMQPClass) -> Vec<u8> {
    let mut out = Vec::new();
    codec::write_method(&mut out, channel, method.clone());
    out
}

/// A check that may refuse: its error must make a valid close method.
fn check<T>(result: Result<T, AmqpError>) {
    if let Err(error) = result {
        check_error(&error);
    }
}

/// Every error becomes a close method: its reply text is bounded and its code known.
fn check_error(error: &AmqpError) {
    assert!(error.reply_text().len() <= 255, "reply text over 255 octets");
    let _ = (error.code.code(), error.to_string());
}
