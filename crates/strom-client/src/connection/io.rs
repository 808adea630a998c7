//! The socket tasks: one reads response frames and hands each to its waiter, one writes
//! queued request frames, coalescing what is queued into one flush. Both are generic over
//! the stream half (a TCP half, or a TLS stream's), monomorphised per stream type.

use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::mpsc;

use super::{OutgoingFrame, State};
use crate::error::{ClientError, Result};

pub(super) async fn read_loop<R: AsyncRead + Unpin>(
    mut reader: BufReader<R>,
    state: Arc<State>,
    response_bytes_max: usize,
) {
    let address = state.address.clone();
    let result: Result<()> = async {
        loop {
            let size = match reader.read_i32().await {
                Ok(size) => size,
                Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Err(ClientError::ConnectionClosed {
                        address: address.clone(),
                    })
                }
                Err(source) => {
                    return Err(ClientError::Io {
                        address: address.clone(),
                        source,
                    })
                }
            };
            if size < 4 || size as i64 > response_bytes_max as i64 {
                // A TLS record (an alert, 0x15, or a handshake, 0x16, version 3.x) read as
                // a frame size: a plaintext client on a TLS listener.
                if matches!(size.to_be_bytes(), [0x15 | 0x16, 0x03, 0x00..=0x04, _]) {
                    return Err(ClientError::TlsExpected {
                        address: address.clone(),
                    });
                }
                return Err(ClientError::ResponseTooLarge {
                    address: address.clone(),
                    size_bytes: size as i64,
                    max_bytes: response_bytes_max,
                });
            }
            let mut frame = BytesMut::zeroed(size as usize);
            reader
                .read_exact(&mut frame)
                .await
                .map_err(|source| ClientError::Io {
                    address: address.clone(),
                    source,
                })?;
            let correlation_id = i32::from_be_bytes(frame[0..4].try_into().expect("4 bytes"));
            let waiter = state
                .pending
                .lock()
                .expect("pending lock")
                .remove(&correlation_id);
            match waiter {
                Some(waiter) => {
                    let _ = waiter.send(Ok(frame.freeze()));
                }
                None => tracing::debug!(
                    broker = %address,
                    correlation_id,
                    "response for a request no longer waited on (timed out)"
                ),
            }
        }
    }
    .await;
    if let Err(error) = result {
        tracing::debug!(broker = %address, %error, "connection reader stopped");
        let message = error.to_string();
        // Every waiter gets its own copy. Keep the kind and a TLS error itself: they tell
        // a refused certificate (an alert after the handshake) from a reset.
        let source_copy = || match &error {
            ClientError::Io { source, .. } => match super::tls::rustls_error(source) {
                Some(tls) => std::io::Error::new(source.kind(), tls.clone()),
                None => std::io::Error::new(source.kind(), message.clone()),
            },
            _ => std::io::Error::other(message.clone()),
        };
        state.fail_all(|| match &error {
            ClientError::ConnectionClosed { address } => ClientError::ConnectionClosed {
                address: address.clone(),
            },
            ClientError::TlsExpected { address } => ClientError::TlsExpected {
                address: address.clone(),
            },
            _ => ClientError::Io {
                address: address.clone(),
                source: source_copy(),
            },
        });
    }
}

pub(super) async fn write_loop<W: AsyncWrite + Unpin>(
    mut writer: BufWriter<W>,
    mut frames: mpsc::Receiver<OutgoingFrame>,
    state: Arc<State>,
) {
    while let Some(first) = frames.recv().await {
        let mut written = Vec::new();
        let mut result = writer.write_all(&first.frame).await;
        written.extend(first.written);
        // Coalesce whatever else is queued into the same flush.
        while result.is_ok() {
            match frames.try_recv() {
                Ok(next) => {
                    result = writer.write_all(&next.frame).await;
                    written.extend(next.written);
                }
                Err(_) => break,
            }
        }
        if result.is_ok() {
            result = writer.flush().await;
        }
        if let Err(source) = result {
            let message = source.to_string();
            let kind = source.kind();
            state.fail_all(|| ClientError::Io {
                address: state.address.clone(),
                source: std::io::Error::new(kind, message.clone()),
            });
            return;
        }
        for done in written {
            let _ = done.send(());
        }
    }
    let _ = writer.shutdown().await;
}
