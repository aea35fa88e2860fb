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

use super::erl::{self, FrameReason};
use crate::error::AmqpError;

pub const FRAME_OVERHEAD: usize = 8;
const FRAME_HEADER_LEN: usize = 7;
/// A content header's fixed part: class, weight, body size.
const CONTENT_HEADER_MIN: usize = 12;

/// One decoded incoming frame.
// Frames are moved, never stored in bulk; boxing the header would cost an allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Frame {
    Method(u16, AMQPClass),
    /// The decoded header and its raw payload (reused verbatim for deliveries). Boxed: the
    /// decoded properties are ~300 bytes, and every frame is moved through several calls.
    Header(u16, Box<AMQPContentHeader>, Bytes),
    Body(u16, Bytes),
    Heartbeat(u16),
    /// A well-formed method that its channel must refuse with this error once it gets there:
    /// a field amq-protocol does not keep says so (basic.qos with a prefetch_size).
    Refused(u16, AMQPClass, AmqpError),
}

impl Frame {
    /// A refused method as a plain method frame, and the error its channel raises.
    pub fn split_refusal(self) -> (Frame, Option<AmqpError>) {
        match self {
            Frame::Refused(ch, m, e) => (Frame::Method(ch, m), Some(e)),
            other => (other, None),
        }
    }
}

/// What is wrong with the incoming bytes, and how RabbitMQ's reader reacts to it.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// Close the connection with this error; the stream is still framed, so later frames are
    /// read (and only connection.close/close-ok matter any more).
    #[error("{0}")]
    Close(AmqpError),
    /// Close the connection with this error and read nothing more: the framing is lost
    /// (RabbitMQ's `fatal_frame_error`).
    #[error("{0}")]
    Fatal(AmqpError),
    /// RabbitMQ's reader crashes on this input, so the socket closes without a frame.
    #[error("{0}")]
    Abort(&'static str),
}

impl FrameError {
    /// The error to report to the client, if any.
    pub fn amqp(&self) -> Option<&AmqpError> {
        match self {
            FrameError::Close(e) | FrameError::Fatal(e) => Some(e),
            FrameError::Abort(_) => None,
        }
    }
}

/// Split the next complete frame off `buf`. `Ok(None)` means more bytes are needed.
///
/// The checks come in RabbitMQ's order (`rabbit_reader:handle_input/3`, then
/// `rabbit_command_assembler:analyze_frame/3`): the size from the 7-byte header against
/// `frame_max` before the payload is buffered, the end marker, then the frame type and its
/// payload. Like RabbitMQ, a payload of up to `frame_max` octets is accepted (clients often
/// forget the 8 octets of framing) while the error names `frame_max - 8`.
pub fn next_frame(buf: &mut BytesMut, frame_max: u32) -> Result<Option<Frame>, FrameError> {
    read_frame(buf, frame_max, Payloads::Share)
}

/// How a content frame's payload is taken from the read buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payloads {
    /// A slice of the read buffer: no copy. Right when the buffer is full of frames.
    Share,
    /// Payloads up to `COPY_UP_TO` bytes are copied out, so that a queued message never pins
    /// a read buffer much larger than itself (a slow producer's 200-byte message would
    /// otherwise keep a whole mostly-empty read allocation alive while it waits in a queue).
    CopySmall,
}

/// Larger payloads fill most of the allocation they were read into.
pub const COPY_UP_TO: usize = 8 * 1024;

/// `next_frame`, choosing how content payloads are held.
pub fn read_frame(buf: &mut BytesMut, frame_max: u32, payloads: Payloads) -> Result<Option<Frame>, FrameError> {
    if buf.len() < FRAME_HEADER_LEN {
        return Ok(None);
    }
    let frame_type = buf[0];
    let channel = u16::from_be_bytes([buf[1], buf[2]]);
    let size = u32::from_be_bytes([buf[3], buf[4], buf[5], buf[6]]);
    if frame_max != 0 && size > frame_max {
        let max = frame_max.saturating_sub(FRAME_OVERHEAD as u32);
        let text = erl::frame_error(frame_type, &[], FrameReason::FrameTooLarge { size, max });
        return Err(FrameError::Fatal(AmqpError::frame_error(text)));
    }
    let size = size as usize;
    let total = size + FRAME_OVERHEAD;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    let mut frame = buf.split_to(total);
    let end = frame[total - 1];
    frame.advance(FRAME_HEADER_LEN);
    frame.truncate(size);
    let copy = payloads == Payloads::CopySmall
        && size <= COPY_UP_TO
        && matches!(frame_type, constants::FRAME_HEADER | constants::FRAME_BODY);
    let payload = if copy { Bytes::copy_from_slice(&frame) } else { frame.freeze() };
    if end != constants::FRAME_END {
        let text = erl::frame_error(frame_type, &payload, FrameReason::InvalidEndMarker(end));
        return Err(FrameError::Fatal(AmqpError::frame_error(text)));
    }
    let unknown =
        || FrameError::Close(AmqpError::frame_error(erl::frame_error(frame_type, &payload, FrameReason::UnknownFrame)));
    let decoded = match frame_type {
        constants::FRAME_METHOD if payload.len() >= 4 => {
            let method = decode_method(&payload)?;
            match refusal(&payload) {
                Some(e) => Frame::Refused(channel, method, e),
                None => Frame::Method(channel, method),
            }
        }
        constants::FRAME_HEADER if payload.len() >= CONTENT_HEADER_MIN => match parse_content_header(&payload[..]) {
            Ok((&[], header)) => Frame::Header(channel, Box::new(header), payload),
            _ => {
                return Err(FrameError::Close(AmqpError::frame_error(format!(
                    "cannot decode content header on channel {channel}"
                ))));
            }
        },
        constants::FRAME_BODY => Frame::Body(channel, payload),
        constants::FRAME_HEARTBEAT if payload.is_empty() => Frame::Heartbeat(channel),
        _ => return Err(unknown()),
    };
    Ok(Some(decoded))
}

/// RabbitMQ's `unexpected_frame` text for a frame that is well-formed but out of place.
pub fn unexpected_frame(frame: &Frame) -> AmqpError {
    let mut method = Vec::new();
    let (frame_type, payload): (u8, &[u8]) = match frame {
        Frame::Method(ch, m) | Frame::Refused(ch, m, _) => {
            write_method(&mut method, *ch, m.clone());
            let end = method.len().saturating_sub(1);
            (constants::FRAME_METHOD, method.get(FRAME_HEADER_LEN..end).unwrap_or_default())
        }
        Frame::Header(_, _, raw) => (constants::FRAME_HEADER, raw),
        Frame::Body(_, body) => (constants::FRAME_BODY, body),
        Frame::Heartbeat(_) => (constants::FRAME_HEARTBEAT, &[]),
    };
    AmqpError::unexpected_frame(erl::unexpected_frame(frame_type, payload))
}

fn decode_method(payload: &[u8]) -> Result<AMQPClass, FrameError> {
    let class_id = u16::from_be_bytes([payload[0], payload[1]]);
    let method_id = u16::from_be_bytes([payload[2], payload[3]]);
    if !known_method(class_id, method_id) {
        // RabbitMQ's `lookup_method_name/1` has no clause for it and the reader crashes.
        return Err(FrameError::Abort("unknown class or method id"));
    }
    match parse_class(payload) {
        Ok((&[], class)) => Ok(class),
        // RabbitMQ 3.10 checks every short string (names, keys, tags) is UTF-8.
        _ if malformed_short_string(class_id, method_id, &payload[4..]) => {
            Err(FrameError::Close(AmqpError::frame_error("Malformed UTF-8 in shortstr")))
        }
        _ if tables_at_fault(class_id, method_id, &payload[4..]) => {
            // The fields are framed right but a field table is not: RabbitMQ's
            // `rabbit_binary_parser:parse_table/1` crashes the reader.
            Err(FrameError::Abort("malformed field table"))
        }
        _ => Err(FrameError::Close(AmqpError::frame_error(erl::cannot_decode(&payload[4..])).at(class_id, method_id))),
    }
}

/// basic.qos with prefetch_size != 0, which RabbitMQ never implemented (540); amq-protocol
/// drops the field, so it is read here from the bytes (class, method, then the u32).
fn refusal(payload: &[u8]) -> Option<AmqpError> {
    match payload {
        [0, 60, 0, 10, a, b, c, d, ..] if [*a, *b, *c, *d] != [0; 4] => {
            let size = u32::from_be_bytes([*a, *b, *c, *d]);
            Some(AmqpError::not_implemented(format!("prefetch_size!=0 ({size})")).at(60, 10))
        }
        _ => None,
    }
}

/// Whether `(class, method)` names a method of AMQP 0-9-1 as RabbitMQ speaks it.
fn known_method(class_id: u16, method_id: u16) -> bool {
    match class_id {
        10 => matches!(method_id, 10 | 11 | 20 | 21 | 30 | 31 | 40 | 41 | 50 | 51 | 60 | 61 | 70 | 71),
        20 => matches!(method_id, 10 | 11 | 20 | 21 | 40 | 41),
        30 => matches!(method_id, 10 | 11),
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

/// The wire layout of a method's fields, as far as framing goes.
#[derive(Clone, Copy)]
enum Field {
    Octet,
    Short,
    ShortStr,
    /// A length-prefixed blob: a long string or a field table.
    Long,
}

/// The methods whose fields hold a field table, and their layout.
fn layout(class_id: u16, method_id: u16) -> Option<&'static [Field]> {
    use Field::*;
    Some(match (class_id, method_id) {
        (10, 10) => &[Octet, Octet, Long, Long, Long],
        (10, 11) => &[Long, ShortStr, Long, ShortStr],
        (40, 10) => &[Short, ShortStr, ShortStr, Octet, Long],
        (40, 30) | (40, 40) | (50, 20) => &[Short, ShortStr, ShortStr, ShortStr, Octet, Long],
        (50, 10) => &[Short, ShortStr, Octet, Long],
        (50, 50) => &[Short, ShortStr, ShortStr, ShortStr, Long],
        (60, 20) => &[Short, ShortStr, ShortStr, Octet, Long],
        _ => return None,
    })
}

/// The methods with short strings but no field table, and their layout.
fn string_layout(class_id: u16, method_id: u16) -> Option<&'static [Field]> {
    use Field::*;
    Some(match (class_id, method_id) {
        (10, 40) => &[ShortStr, ShortStr, Octet],
        (10, 50) | (20, 40) => &[Short, ShortStr, Short, Short],
        (10, 60) => &[ShortStr],
        (10, 70) => &[Long, ShortStr],
        (20, 10) => &[ShortStr],
        (40, 20) | (50, 30) | (50, 40) | (60, 70) => &[Short, ShortStr, Octet],
        (60, 30) => &[ShortStr, Octet],
        (60, 40) => &[Short, ShortStr, ShortStr, Octet],
        _ => return None,
    })
}

/// True when the method's fields are framed exactly right and one of its short strings is
/// not UTF-8.
fn malformed_short_string(class_id: u16, method_id: u16, fields: &[u8]) -> bool {
    let Some(layout) = layout(class_id, method_id).or_else(|| string_layout(class_id, method_id)) else {
        return false;
    };
    let mut malformed = false;
    framed_exactly(layout, fields, |text| malformed |= std::str::from_utf8(text).is_err()) && malformed
}

/// True when the method's fields are framed exactly right, so a decoding failure can only
/// come from inside one of its field tables.
fn tables_at_fault(class_id: u16, method_id: u16, fields: &[u8]) -> bool {
    layout(class_id, method_id).is_some_and(|layout| framed_exactly(layout, fields, |_| {}))
}

/// Walk `fields` along `layout`, showing each short string's bytes to `short_string`: true
/// when every field is there and nothing is left over.
fn framed_exactly(layout: &[Field], mut fields: &[u8], mut short_string: impl FnMut(&[u8])) -> bool {
    for field in layout {
        let len = match field {
            Field::Octet => 1,
            Field::Short => 2,
            Field::ShortStr => match fields.first() {
                Some(&n) => {
                    if let Some(text) = fields.get(1..1 + usize::from(n)) {
                        short_string(text);
                    }
                    1 + usize::from(n)
                }
                None => return false,
            },
            Field::Long => match fields.get(..4) {
                Some(n) => 4 + u32::from_be_bytes([n[0], n[1], n[2], n[3]]) as usize,
                None => return false,
            },
        };
        match fields.get(len..) {
            Some(rest) => fields = rest,
            None => return false,
        }
    }
    fields.is_empty()
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

    fn code(r: Result<Option<Frame>, FrameError>) -> Option<u16> {
        r.unwrap_err().amqp().map(|e| e.code.code())
    }

    fn method_frame(channel: u16, payload: &[u8]) -> BytesMut {
        let mut v = vec![constants::FRAME_METHOD];
        v.extend_from_slice(&channel.to_be_bytes());
        v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        v.extend_from_slice(payload);
        v.push(constants::FRAME_END);
        BytesMut::from(&v[..])
    }

    #[test]
    fn a_short_string_that_is_not_utf8_is_a_frame_error() {
        // queue.declare (a method with a table) and basic.publish (one without), as RabbitMQ.
        let declare = [0, 50, 0, 10, 0, 0, 2, 0xff, 0xfe, 0, 0, 0, 0, 0];
        let publish = [0, 60, 0, 40, 0, 0, 0, 2, 0xc3, 0x28, 0];
        for payload in [&declare[..], &publish[..]] {
            match next_frame(&mut method_frame(1, payload), 0) {
                Err(FrameError::Close(e)) => {
                    assert_eq!(
                        (e.code.code(), e.reply_text()),
                        (501, "FRAME_ERROR - Malformed UTF-8 in shortstr".into())
                    )
                }
                other => panic!("{other:?}"),
            }
        }
        // the same methods with UTF-8 names decode
        let declare = [0, 50, 0, 10, 0, 0, 2, b'o', b'k', 0, 0, 0, 0, 0];
        assert!(matches!(next_frame(&mut method_frame(1, &declare), 0), Ok(Some(Frame::Method(1, _)))));
    }

    #[test]
    fn rejects_bad_frames() {
        let mut buf = BytesMut::from(&[9u8, 0, 0, 0, 0, 0, 0, 206][..]);
        assert_eq!(code(next_frame(&mut buf, 0)), Some(501));
        let mut buf = BytesMut::from(&[1u8, 0, 1, 0, 1, 0, 0][..]);
        assert_eq!(code(next_frame(&mut buf, 4096)), Some(501));
        let mut buf = BytesMut::from(&[8u8, 0, 0, 0, 0, 0, 0, 7][..]);
        assert_eq!(code(next_frame(&mut buf, 0)), Some(501));
        // Incomplete frame: wait for more.
        let mut buf = BytesMut::from(&[1u8, 0, 1, 0, 0, 0, 10, 0][..]);
        assert!(matches!(next_frame(&mut buf, 0), Ok(None)));
    }

    #[test]
    fn frame_max_counts_the_payload_only() {
        let mut buf = BytesMut::from(&[3u8, 0, 1, 0, 0, 16, 0][..]);
        assert!(matches!(next_frame(&mut buf, 4096), Ok(None)));
        let mut buf = BytesMut::from(&[3u8, 0, 1, 0, 0, 16, 1][..]);
        match next_frame(&mut buf, 4096) {
            Err(FrameError::Fatal(e)) => {
                assert_eq!(e.text, "type 3, all octets = <<>>: {frame_too_large,4097,4088}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_methods_abort_and_bad_fields_are_501() {
        let mut buf = BytesMut::from(&[1u8, 0, 1, 0, 0, 0, 4, 0, 99, 0, 10, 206][..]);
        assert!(matches!(next_frame(&mut buf, 0), Err(FrameError::Abort(_))));
        // queue.declare with a table holding a value of type 'Z': the table is at fault.
        let payload = [0, 50, 0, 10, 0, 0, 0, 0, 0, 0, 0, 7, 1, b'k', b'Z', 0, 0, 0, 1];
        let mut bytes = vec![1u8, 0, 1, 0, 0, 0, payload.len() as u8];
        bytes.extend_from_slice(&payload);
        bytes.push(206);
        let mut buf = BytesMut::from(&bytes[..]);
        assert!(matches!(next_frame(&mut buf, 0), Err(FrameError::Abort(_))));
        // basic.qos with trailing octets: 501 naming the fields.
        let mut buf = BytesMut::from(&[1u8, 0, 1, 0, 0, 0, 13, 0, 60, 0, 10, 0, 0, 0, 0, 0, 1, 0, 9, 9, 206][..]);
        match next_frame(&mut buf, 0) {
            Err(FrameError::Close(e)) => {
                assert_eq!((e.code.code(), e.class_id, e.method_id), (501, 60, 10));
                assert_eq!(e.text, "cannot decode <<0,0,0,0,0,1,0,9,9>>");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn heartbeat_on_any_channel_is_decoded() {
        let mut buf = BytesMut::from(&[8u8, 0, 1, 0, 0, 0, 0, 206][..]);
        assert!(matches!(next_frame(&mut buf, 0), Ok(Some(Frame::Heartbeat(1)))));
    }
}
