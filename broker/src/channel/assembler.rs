//! Content assembly as a pure state machine: `basic.publish`, then a content header, then body
//! frames until the declared size is reached. Every frame out of order is 505 UNEXPECTED_FRAME;
//! a body larger than declared is 501 FRAME_ERROR. The size limit is checked from the header,
//! before any body is buffered.

use amq_protocol::frame::AMQPContentHeader;
use amq_protocol::protocol::{AMQPClass, basic};
use bytes::{Bytes, BytesMut};

use crate::connection::codec::Frame;
use crate::error::{AmqpError, AmqpResult};

/// A complete published message, ready to route.
#[derive(Debug)]
pub struct Content {
    pub publish: basic::Publish,
    pub header: AMQPContentHeader,
    pub raw_header: Bytes,
    pub body: Bytes,
}

// One per channel, and moved once per frame; boxing would allocate per message.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Default)]
pub enum Assembler {
    #[default]
    Idle,
    AwaitingHeader(basic::Publish),
    AwaitingBody {
        content: Content,
        parts: Option<BytesMut>,
    },
}

/// What one frame produced.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Assembled {
    /// Mid-content: nothing to do yet.
    Pending,
    Method(AMQPClass),
    Content(Content),
}

const PUBLISH: (u16, u16) = (60, 40);

impl Assembler {
    pub fn feed(&mut self, frame: Frame, max_message_size: u64) -> AmqpResult<Assembled> {
        match (std::mem::take(self), frame) {
            (Assembler::Idle, Frame::Method(_, AMQPClass::Basic(basic::AMQPMethod::Publish(p)))) => {
                *self = Assembler::AwaitingHeader(p);
                Ok(Assembled::Pending)
            }
            (Assembler::Idle, Frame::Method(_, m)) => Ok(Assembled::Method(m)),
            (Assembler::Idle, _) => {
                Err(AmqpError::unexpected_frame("expected method frame, got non method frame instead"))
            }
            (Assembler::AwaitingHeader(publish), Frame::Header(_, header, raw_header)) => {
                if header.class_id != 60 {
                    return Err(AmqpError::unexpected_frame(format!(
                        "expected content header for class 60, got one for class {} instead",
                        header.class_id
                    ))
                    .at(PUBLISH.0, PUBLISH.1));
                }
                if header.body_size > max_message_size {
                    return Err(AmqpError::precondition_failed(format!(
                        "message size {} is larger than configured max size {}",
                        header.body_size, max_message_size
                    ))
                    .at(PUBLISH.0, PUBLISH.1));
                }
                let content = Content { publish, header, raw_header, body: Bytes::new() };
                if content.header.body_size == 0 {
                    return Ok(Assembled::Content(content));
                }
                *self = Assembler::AwaitingBody { content, parts: None };
                Ok(Assembled::Pending)
            }
            (Assembler::AwaitingHeader(_), _) => Err(AmqpError::unexpected_frame(
                "expected content header for class 60, got non content header frame instead",
            )
            .at(PUBLISH.0, PUBLISH.1)),
            (Assembler::AwaitingBody { mut content, mut parts }, Frame::Body(_, chunk)) => {
                let have = parts.as_ref().map_or(content.body.len(), BytesMut::len) as u64;
                let total = have + chunk.len() as u64;
                if total > content.header.body_size {
                    return Err(AmqpError::frame_error(format!(
                        "content body is larger than the declared size {}",
                        content.header.body_size
                    ))
                    .at(PUBLISH.0, PUBLISH.1));
                }
                // A body in one frame is kept as the received slice; several are joined.
                if content.body.is_empty() && parts.is_none() {
                    content.body = chunk;
                } else {
                    let joined = parts.get_or_insert_with(|| {
                        let mut b = BytesMut::with_capacity(content.header.body_size as usize);
                        b.extend_from_slice(&content.body);
                        b
                    });
                    joined.extend_from_slice(&chunk);
                }
                if total == content.header.body_size {
                    if let Some(joined) = parts {
                        content.body = joined.freeze();
                    }
                    return Ok(Assembled::Content(content));
                }
                *self = Assembler::AwaitingBody { content, parts };
                Ok(Assembled::Pending)
            }
            (Assembler::AwaitingBody { .. }, _) => {
                Err(AmqpError::unexpected_frame("expected content body, got non content body frame instead")
                    .at(PUBLISH.0, PUBLISH.1))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::protocol::BasicProperties;

    fn publish() -> Frame {
        Frame::Method(1, AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish::default())))
    }

    fn header(size: u64) -> Frame {
        let h = AMQPContentHeader { class_id: 60, body_size: size, properties: BasicProperties::default() };
        Frame::Header(1, h, Bytes::new())
    }

    fn body(b: &'static [u8]) -> Frame {
        Frame::Body(1, Bytes::from_static(b))
    }

    #[test]
    fn assembles_multi_frame_body() {
        let mut a = Assembler::default();
        assert!(matches!(a.feed(publish(), 100), Ok(Assembled::Pending)));
        assert!(matches!(a.feed(header(6), 100), Ok(Assembled::Pending)));
        assert!(matches!(a.feed(body(b"abc"), 100), Ok(Assembled::Pending)));
        match a.feed(body(b"def"), 100) {
            Ok(Assembled::Content(c)) => assert_eq!(&c.body[..], b"abcdef"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(a, Assembler::Idle));
    }

    #[test]
    fn empty_body_completes_at_header() {
        let mut a = Assembler::default();
        a.feed(publish(), 100).unwrap();
        assert!(matches!(a.feed(header(0), 100), Ok(Assembled::Content(_))));
    }

    #[test]
    fn out_of_order_frames() {
        let mut a = Assembler::default();
        assert_eq!(a.feed(body(b"x"), 100).unwrap_err().code.code(), 505);
        let mut a = Assembler::default();
        assert_eq!(a.feed(header(1), 100).unwrap_err().code.code(), 505);
        let mut a = Assembler::default();
        a.feed(publish(), 100).unwrap();
        assert_eq!(a.feed(publish(), 100).unwrap_err().code.code(), 505);
        let mut a = Assembler::default();
        a.feed(publish(), 100).unwrap();
        a.feed(header(2), 100).unwrap();
        assert_eq!(a.feed(publish(), 100).unwrap_err().code.code(), 505);
    }

    #[test]
    fn size_checks() {
        let mut a = Assembler::default();
        a.feed(publish(), 100).unwrap();
        assert_eq!(a.feed(header(101), 100).unwrap_err().code.code(), 406);
        let mut a = Assembler::default();
        a.feed(publish(), 100).unwrap();
        a.feed(header(2), 100).unwrap();
        assert_eq!(a.feed(body(b"abc"), 100).unwrap_err().code.code(), 501);
    }
}
