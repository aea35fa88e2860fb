//! Frames in and out. This is the only module that touches bytes on the wire.
//!
//! Incoming: `next_frame` splits one frame off the read buffer after checking its type, its
//! size against `frame_max` (before the payload is buffered) and its end marker, then decodes
//! methods and content headers with amq-protocol. Bodies stay `Bytes` slices of the read buffer.
//!
//! Outgoing: methods go through amq-protocol's `gen_frame`; the hot-path frames of a delivery
//! (`basic.deliver`, the pre-encoded content header and body frames) are written directly.

use amq_protocol::frame::parsing::parse_content_header;
use amq_protocol::frame::{AMQPContentHeader, AMQPFrame, WriteContext, gen_frame};
use amq_protocol::protocol::{AMQPClass, constants, parse_class};
use bytes::{Buf, Bytes, BytesMut};

use crate::error::{AmqpError, AmqpResult};

pub const FRAME_OVERHEAD: usize = 8;
const FRAME_HEADER_LEN: usize = 7;

/// One decoded incoming frame.
// Frames are moved, never stored in bulk; boxing the header would cost an allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Frame {
    Method(u16, AMQPClass),
    /// The decoded header and its raw payload (reused verbatim for deliveries).
    Header(u16, AMQPContentHeader, Bytes),
    Body(u16, Bytes),
    Heartbeat(u16),
}

/// Split the next complete frame off `buf`. `Ok(None)` means more bytes are needed.
pub fn next_frame(buf: &mut BytesMut, frame_max: u32) -> AmqpResult<Option<Frame>> {
    if buf.len() < FRAME_HEADER_LEN {
        return Ok(None);
    }
    let frame_type = buf[0];
    let channel = u16::from_be_bytes([buf[1], buf[2]]);
    let size = u32::from_be_bytes([buf[3], buf[4], buf[5], buf[6]]) as usize;
    if !matches!(
        frame_type,
        constants::FRAME_METHOD | constants::FRAME_HEADER | constants::FRAME_BODY | constants::FRAME_HEARTBEAT
    ) {
        return Err(AmqpError::frame_error(format!(
            "type {frame_type}, first 16 octets = {:?}: unknown frame type",
            &buf[..buf.len().min(16)]
        )));
    }
    if frame_max != 0 && size + FRAME_OVERHEAD > frame_max as usize {
        return Err(AmqpError::frame_error(format!(
            "type {frame_type}, channel {channel}: frame_too_large, payload {size} > {}",
            frame_max as usize - FRAME_OVERHEAD
        )));
    }
    let total = size + FRAME_OVERHEAD;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    if buf[total - 1] != constants::FRAME_END {
        return Err(AmqpError::frame_error(format!(
            "type {frame_type}, channel {channel}: invalid frame end marker {}",
            buf[total - 1]
        )));
    }
    let mut frame = buf.split_to(total);
    frame.advance(FRAME_HEADER_LEN);
    frame.truncate(size);
    let payload = frame.freeze();
    let decoded = match frame_type {
        constants::FRAME_METHOD => Frame::Method(channel, decode_method(&payload)?),
        constants::FRAME_HEADER => match parse_content_header(&payload[..]) {
            Ok((&[], header)) => Frame::Header(channel, header, payload),
            _ => return Err(AmqpError::frame_error(format!("cannot decode content header on channel {channel}"))),
        },
        constants::FRAME_BODY => Frame::Body(channel, payload),
        _ => Frame::Heartbeat(channel),
    };
    Ok(Some(decoded))
}

fn decode_method(payload: &[u8]) -> AmqpResult<AMQPClass> {
    match parse_class(payload) {
        Ok((&[], class)) => Ok(class),
        _ => {
            let (class_id, method_id) = if payload.len() >= 4 {
                (u16::from_be_bytes([payload[0], payload[1]]), u16::from_be_bytes([payload[2], payload[3]]))
            } else {
                (0, 0)
            };
            if known_method(class_id, method_id) {
                Err(AmqpError::frame_error(format!("cannot decode method {class_id}.{method_id}"))
                    .at(class_id, method_id))
            } else {
                Err(AmqpError::command_invalid(format!("unknown method {class_id}.{method_id}")))
            }
        }
    }
}

/// Whether `(class, method)` names a method of AMQP 0-9-1 as RabbitMQ speaks it.
fn known_method(class_id: u16, method_id: u16) -> bool {
    match class_id {
        10 => matches!(method_id, 10 | 11 | 20 | 21 | 30 | 31 | 40 | 41 | 50 | 51 | 60 | 61 | 70 | 71),
        20 => matches!(method_id, 10 | 11 | 20 | 21 | 40 | 41),
        40 => matches!(method_id, 10 | 11 | 20 | 21 | 30 | 31 | 40 | 51),
        50 => matches!(method_id, 10 | 11 | 20 | 21 | 30 | 31 | 40 | 41 | 50 | 51),
        60 => matches!(
            method_id,
            10 | 11 | 20 | 21 | 30 | 31 | 40 | 50 | 60 | 70 | 71 | 72 | 80 | 90 | 100 | 110 | 111 | 120
        ),
        85 => matches!(method_id, 10 | 11),
        90 => matches!(method_id, 10 | 11 | 20 | 21 | 30 | 31),
        _ => false,
    }
}

/// Append any frame, encoded by amq-protocol.
pub fn write_frame(out: &mut Vec<u8>, frame: &AMQPFrame) {
    let buf = std::mem::take(out);
    match gen_frame(frame)(WriteContext::from(buf)) {
        Ok(ctx) => *out = ctx.into_inner().0,
        // Writing into a Vec cannot run out of room; the only failure left is a bug in the
        // frame itself, which must not take the connection down with it.
        Err(e) => tracing::error!(error = ?e, "failed to encode frame"),
    }
}

pub fn write_method(out: &mut Vec<u8>, channel: u16, method: AMQPClass) {
    write_frame(out, &AMQPFrame::Method(channel, method));
}

pub fn write_heartbeat(out: &mut Vec<u8>) {
    out.extend_from_slice(&[constants::FRAME_HEARTBEAT, 0, 0, 0, 0, 0, 0, constants::FRAME_END]);
}

fn put_short_str(out: &mut Vec<u8>, s: &str) {
    // Short strings from amq-protocol are at most 255 bytes; cut defensively.
    let bytes = &s.as_bytes()[..s.len().min(255)];
    out.push(bytes.len() as u8);
    out.extend_from_slice(bytes);
}

/// `basic.deliver`, written directly: it is the one method on the hot path.
pub fn write_deliver(
    out: &mut Vec<u8>,
    channel: u16,
    consumer_tag: &str,
    delivery_tag: u64,
    redelivered: bool,
    exchange: &str,
    routing_key: &str,
) {
    let start = out.len();
    out.push(constants::FRAME_METHOD);
    out.extend_from_slice(&channel.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&60u16.to_be_bytes());
    out.extend_from_slice(&60u16.to_be_bytes());
    put_short_str(out, consumer_tag);
    out.extend_from_slice(&delivery_tag.to_be_bytes());
    out.push(u8::from(redelivered));
    put_short_str(out, exchange);
    put_short_str(out, routing_key);
    let size = (out.len() - start - FRAME_HEADER_LEN) as u32;
    out[start + 3..start + 7].copy_from_slice(&size.to_be_bytes());
    out.push(constants::FRAME_END);
}

/// The content header (pre-encoded payload) and the body split into frames of at most
/// `frame_max` bytes.
pub fn write_content(out: &mut Vec<u8>, channel: u16, header: &[u8], body: &[u8], frame_max: u32) {
    put_frame(out, constants::FRAME_HEADER, channel, header);
    let max_payload = (frame_max as usize).saturating_sub(FRAME_OVERHEAD).max(1);
    for chunk in body.chunks(max_payload) {
        put_frame(out, constants::FRAME_BODY, channel, chunk);
    }
}

fn put_frame(out: &mut Vec<u8>, frame_type: u8, channel: u16, payload: &[u8]) {
    out.reserve(payload.len() + FRAME_OVERHEAD);
    out.push(frame_type);
    out.extend_from_slice(&channel.to_be_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out.push(constants::FRAME_END);
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::protocol::{BasicProperties, basic};

    fn encode(frame: &AMQPFrame) -> Vec<u8> {
        let mut v = Vec::new();
        write_frame(&mut v, frame);
        v
    }

    #[test]
    fn deliver_matches_amq_protocol() {
        let expected = encode(&AMQPFrame::Method(
            7,
            AMQPClass::Basic(basic::AMQPMethod::Deliver(basic::Deliver {
                consumer_tag: "ctag".into(),
                delivery_tag: 42,
                redelivered: true,
                exchange: "ex".into(),
                routing_key: "rk.1".into(),
            })),
        ));
        let mut out = Vec::new();
        write_deliver(&mut out, 7, "ctag", 42, true, "ex", "rk.1");
        assert_eq!(out, expected);
    }

    #[test]
    fn content_frames_parse_back_and_split_at_frame_max() {
        let props = BasicProperties::default().with_content_type("text/plain".into());
        let header = AMQPFrame::Header(0, AMQPContentHeader { class_id: 60, body_size: 10, properties: props.clone() });
        let encoded = encode(&header);
        let header_payload = &encoded[7..encoded.len() - 1];
        let mut out = Vec::new();
        write_content(&mut out, 3, header_payload, b"0123456789", 12);
        let mut buf = BytesMut::from(&out[..]);
        match next_frame(&mut buf, 0) {
            Ok(Some(Frame::Header(3, h, _))) => assert_eq!(h.properties, props),
            other => panic!("unexpected {other:?}"),
        }
        let mut body = Vec::new();
        while let Ok(Some(Frame::Body(3, b))) = next_frame(&mut buf, 12) {
            assert!(b.len() <= 4);
            body.extend_from_slice(&b);
        }
        assert_eq!(body, b"0123456789");
        assert!(buf.is_empty());
    }

    #[test]
    fn rejects_bad_frames() {
        let mut buf = BytesMut::from(&[9u8, 0, 0, 0, 0, 0, 0, 206][..]);
        assert_eq!(next_frame(&mut buf, 0).unwrap_err().code.code(), 501);
        let mut buf = BytesMut::from(&[1u8, 0, 1, 0, 1, 0, 0][..]);
        assert_eq!(next_frame(&mut buf, 4096).unwrap_err().code.code(), 501);
        let mut buf = BytesMut::from(&[8u8, 0, 0, 0, 0, 0, 0, 7][..]);
        assert_eq!(next_frame(&mut buf, 0).unwrap_err().code.code(), 501);
        // Incomplete frame: wait for more.
        let mut buf = BytesMut::from(&[1u8, 0, 1, 0, 0, 0, 10, 0][..]);
        assert!(matches!(next_frame(&mut buf, 0), Ok(None)));
    }

    #[test]
    fn heartbeat_on_any_channel_is_decoded() {
        let mut buf = BytesMut::from(&[8u8, 0, 1, 0, 0, 0, 0, 206][..]);
        assert!(matches!(next_frame(&mut buf, 0), Ok(Some(Frame::Heartbeat(1)))));
    }
}
