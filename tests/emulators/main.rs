//! Integration tests of the provider emulators over real sockets. The tests are independent clients: they
//! write raw HTTP requests and raw WebSocket frames themselves and read the raw responses, using parley's
//! provider types only to decode what came back, so a bug shared by the emulator and those types still shows.

mod audio;
mod close_handshake;
mod deepgram;
mod elevenlabs_http;
mod elevenlabs_ws;
mod helpers;
mod lifecycle;
mod openai;
mod twilio;
