"""Runs the README's SDK snippets against running emulators, so a new SDK release can be checked in a minute.

    python3 -m venv /tmp/sdk && /tmp/sdk/bin/pip install openai elevenlabs deepgram-sdk
    eval "$(cargo run -- emulate --deepgram-port 9001 --openai-port 9002 --elevenlabs-port 9003 | grep ^export)" &
    /tmp/sdk/bin/python src/emulators/sdk_check.py

It reads the variables `parley emulate` prints (DEEPGRAM_BASE_URL, ... ELEVENLABS_API_KEY), prints one line per
check and exits non-zero if any failed. Not part of the Rust test suite: it needs Python and the SDKs.
"""

import base64
import json
import math
import os
import struct
import sys
import time


def openai_stream():
    # --- README: OpenAI ---
    from openai import OpenAI

    client = OpenAI(base_url=os.environ["OPENAI_BASE_URL"], api_key=os.environ["OPENAI_API_KEY"])
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Book a table for two"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage = "", None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        usage = chunk.usage or usage
    # --- end ---
    assert "Book a table for two" in text and usage and usage.total_tokens > 0, (text, usage)
    return f"{len(text)} characters, {usage.total_tokens} tokens"


def elevenlabs_http():
    # --- README: ElevenLabs HTTP ---
    from elevenlabs.client import ElevenLabs

    # The SDK appends /v1/... itself: pass the base URL without parley's /v1.
    base_url = os.environ["ELEVENLABS_BASE_URL"].removesuffix("/v1")
    client = ElevenLabs(base_url=base_url, api_key=os.environ["ELEVENLABS_API_KEY"])
    text = "Your table for two is booked."
    audio = b"".join(client.text_to_speech.stream(voice_id="voice-1", text=text, output_format="pcm_16000"))
    spoken, timed_audio = "", b""
    for chunk in client.text_to_speech.stream_with_timestamps(
        voice_id="voice-1", text=text, output_format="pcm_16000"
    ):
        timed_audio += base64.b64decode(chunk.audio_base_64)
        spoken += "".join(chunk.alignment.characters)
        last_end = chunk.alignment.character_end_times_seconds[-1]  # seconds from the start of the request
    # --- end ---
    assert len(audio) == len(timed_audio) == 2 * round(len(text) / 15 * 16000), (len(audio), len(timed_audio))
    assert spoken == text, spoken
    assert abs(last_end - len(audio) / 32000) < 0.01, last_end
    return f"{len(audio)} bytes of pcm_16000 twice, alignment of all {len(spoken)} characters, ends at {last_end:.3f} s"


def elevenlabs_socket():
    # --- README: ElevenLabs WebSocket ---
    # The SDK's convert_realtime always dials wss://, so use a WebSocket client (the SDK depends on
    # `websockets`) with the SDK's message types; GenerationConfig serialises the schedule as floats.
    from elevenlabs import GenerationConfig
    from websockets.sync.client import connect

    base_url = os.environ["ELEVENLABS_BASE_URL"].removesuffix("/v1")
    url = base_url.replace("http", "ws", 1) + "/v1/text-to-speech/voice-1/stream-input?output_format=pcm_16000"
    with connect(url, additional_headers={"xi-api-key": os.environ["ELEVENLABS_API_KEY"]}) as ws:
        config = GenerationConfig(chunk_length_schedule=[50, 120])
        ws.send(json.dumps({"text": " ", "generation_config": config.model_dump()}))
        ws.send(json.dumps({"text": "Your table for two is booked. ", "flush": True}))
        ws.send(json.dumps({"text": ""}))
        audio = b""
        for message in ws:  # ends when the server closes (1000) after isFinal
            m = json.loads(message)
            audio += base64.b64decode(m.get("audio") or "")
            if m.get("isFinal"):
                final_at = time.monotonic()
    closed_after = time.monotonic() - final_at
    # --- end ---
    assert len(audio) == 2 * round(30 / 15 * 16000), len(audio)
    assert closed_after < 0.3, f"the socket closed {closed_after:.3f} s after isFinal"
    return f"{len(audio)} bytes, schedule {config.model_dump()['chunk_length_schedule']}, closed {closed_after * 1000:.0f} ms after isFinal"


def deepgram_listen():
    # --- README: Deepgram ---
    from deepgram import DeepgramClient
    from deepgram.environment import DeepgramClientEnvironment

    ws_base = os.environ["DEEPGRAM_BASE_URL"].removesuffix("/v1")  # ws://127.0.0.1:PORT; the SDK adds /v1/listen
    http_base = ws_base.replace("ws", "http", 1)
    environment = DeepgramClientEnvironment(base=http_base, production=ws_base, agent=ws_base, agent_rest=http_base)
    client = DeepgramClient(api_key=os.environ["DEEPGRAM_API_KEY"], environment=environment)
    # One second of a 300 Hz tone (the emulator hears loud audio as speech), then half a second of silence.
    tone = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 300 * n / 16000))) for n in range(16000))
    audio = tone + b"\0\0" * 8000
    finals = []
    with client.listen.v1.connect(
        model="nova-3", encoding="linear16", sample_rate=16000, interim_results=True, punctuate=True
    ) as socket:
        for i in range(0, len(audio), 640):
            socket.send_media(audio[i : i + 640])
        socket.send_close_stream()
        for message in socket:  # Results..., Metadata, then the server closes (1000)
            if getattr(message, "type", None) == "Results" and message.is_final:
                finals.append(message.channel.alternatives[0].transcript)
            if getattr(message, "type", None) == "Metadata":
                metadata_at = time.monotonic()
    closed_after = time.monotonic() - metadata_at
    # --- end ---
    assert any(f.startswith("This is caller") and f.endswith("speaking.") for f in finals), finals
    assert closed_after < 0.3, f"the socket closed {closed_after:.3f} s after Metadata"
    return f"finals {finals}, closed {closed_after * 1000:.0f} ms after Metadata"


def main():
    failed = 0
    for check in (openai_stream, elevenlabs_http, elevenlabs_socket, deepgram_listen):
        try:
            print(f"PASS {check.__name__}: {check()}")
        except Exception as e:  # report every check, then fail
            failed += 1
            print(f"FAIL {check.__name__}: {type(e).__name__}: {e}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
