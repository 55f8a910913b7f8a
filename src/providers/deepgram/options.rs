//! The query string of Deepgram's live `/v1/listen` socket. Everything configurable about a live stream is a
//! query parameter (there is no config message after connect), so this one type is what parley's STT client
//! builds the URL from and what the emulator reads back. Parameters this type does not name are kept verbatim
//! in `extra`, repeated keys included (`keyterm=a&keyterm=b`).

/// How long a pause must be before a final carries `speech_final: true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpointing {
    /// `endpointing=false`: no `speech_final` from silence detection.
    Disabled,
    /// `endpointing=N`: N ms of silence end a turn.
    Ms(u32),
}

/// The options of one live transcription stream; `None` means "not sent" (the server default applies).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListenOptions {
    pub model: Option<String>,
    pub language: Option<String>,
    /// Raw encoding (`linear16`, `mulaw`, `alaw`, ...); omit for containerised audio.
    pub encoding: Option<String>,
    /// Required by Deepgram whenever `encoding` is given.
    pub sample_rate: Option<u32>,
    pub channels: Option<u32>,
    /// Emit `is_final: false` hypotheses (also required for `utterance_end_ms`).
    pub interim_results: Option<bool>,
    pub endpointing: Option<Endpointing>,
    /// Gap after the last finalized word before an `UtteranceEnd` event.
    pub utterance_end_ms: Option<u32>,
    /// Emit `SpeechStarted` events.
    pub vad_events: Option<bool>,
    pub punctuate: Option<bool>,
    pub smart_format: Option<bool>,
    /// Every other parameter, in order, repeated keys kept.
    pub extra: Vec<(String, String)>,
}

/// A known parameter carried a value of the wrong type (Deepgram answers 400 before the upgrade).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid value {value:?} for query parameter {param}")]
pub struct InvalidListenOption {
    pub param: String,
    pub value: String,
}

impl ListenOptions {
    /// The query string (without the leading `?`), parameters in a stable order, values URL-encoded.
    pub fn to_query(&self) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                out.append_pair(k, &v);
            }
        };
        put("model", self.model.clone());
        put("language", self.language.clone());
        put("encoding", self.encoding.clone());
        put("sample_rate", self.sample_rate.map(|v| v.to_string()));
        put("channels", self.channels.map(|v| v.to_string()));
        put("interim_results", self.interim_results.map(|v| v.to_string()));
        put(
            "endpointing",
            self.endpointing.map(|e| match e {
                Endpointing::Disabled => "false".to_string(),
                Endpointing::Ms(ms) => ms.to_string(),
            }),
        );
        put("utterance_end_ms", self.utterance_end_ms.map(|v| v.to_string()));
        put("vad_events", self.vad_events.map(|v| v.to_string()));
        put("punctuate", self.punctuate.map(|v| v.to_string()));
        put("smart_format", self.smart_format.map(|v| v.to_string()));
        for (k, v) in &self.extra {
            out.append_pair(k, v);
        }
        out.finish()
    }

    /// Parses a query string (with or without the leading `?`).
    pub fn from_query(query: &str) -> Result<Self, InvalidListenOption> {
        let query = query.strip_prefix('?').unwrap_or(query);
        let mut o = ListenOptions::default();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            let bad = || InvalidListenOption { param: k.to_string(), value: v.to_string() };
            match k.as_ref() {
                "model" => o.model = Some(v.to_string()),
                "language" => o.language = Some(v.to_string()),
                "encoding" => o.encoding = Some(v.to_string()),
                "sample_rate" => o.sample_rate = Some(v.parse().map_err(|_| bad())?),
                "channels" => o.channels = Some(v.parse().map_err(|_| bad())?),
                "interim_results" => o.interim_results = Some(parse_bool(&v).ok_or_else(bad)?),
                "endpointing" => {
                    o.endpointing = Some(match parse_bool(&v) {
                        Some(false) => Endpointing::Disabled,
                        // `endpointing=true` means "on, with the default pause".
                        Some(true) => Endpointing::Ms(10),
                        None => Endpointing::Ms(v.parse().map_err(|_| bad())?),
                    })
                }
                "utterance_end_ms" => o.utterance_end_ms = Some(v.parse().map_err(|_| bad())?),
                "vad_events" => o.vad_events = Some(parse_bool(&v).ok_or_else(bad)?),
                "punctuate" => o.punctuate = Some(parse_bool(&v).ok_or_else(bad)?),
                "smart_format" => o.smart_format = Some(parse_bool(&v).ok_or_else(bad)?),
                _ => o.extra.push((k.to_string(), v.to_string())),
            }
        }
        Ok(o)
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_survive_a_round_trip_through_the_query_string() {
        let o = ListenOptions {
            model: Some("nova-3".into()),
            encoding: Some("linear16".into()),
            sample_rate: Some(16000),
            channels: Some(1),
            interim_results: Some(true),
            endpointing: Some(Endpointing::Ms(300)),
            utterance_end_ms: Some(1000),
            vad_events: Some(true),
            extra: vec![("keyterm".into(), "a b".into()), ("keyterm".into(), "c".into())],
            ..Default::default()
        };
        let q = o.to_query();
        assert!(q.contains("keyterm=a+b&keyterm=c"), "{q}");
        assert_eq!(ListenOptions::from_query(&q).unwrap(), o);
    }

    #[test]
    fn endpointing_false_disables_and_a_number_sets_the_pause() {
        let o = ListenOptions::from_query("?endpointing=false").unwrap();
        assert_eq!(o.endpointing, Some(Endpointing::Disabled));
        let o = ListenOptions::from_query("endpointing=250").unwrap();
        assert_eq!(o.endpointing, Some(Endpointing::Ms(250)));
    }

    #[test]
    fn a_wrongly_typed_known_parameter_is_refused_with_its_name() {
        let e = ListenOptions::from_query("sample_rate=fast").unwrap_err();
        assert_eq!(e.param, "sample_rate");
        assert!(ListenOptions::from_query("interim_results=yes").is_err());
    }
}
