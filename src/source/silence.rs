//! Telling a dead replication connection from a quiet one.
//!
//! A connection whose peer vanished without a FIN or RST (a half-open connection: a firewall
//! that dropped its state, a NAT timeout, a network partition) looks exactly like an idle
//! database: no bytes arrive and writes still succeed into the socket buffer. TCP notices only
//! after its retransmission timeout, which is many minutes by default. Both sources therefore
//! count the pipeline's ticks in which their server sent nothing: the server either streams
//! changes or answers a probe (PostgreSQL replies to a status update that asks for a reply;
//! MariaDB/MySQL send a heartbeat whenever the binlog is idle), so a server that stays silent
//! past [`Silence`]'s limit is taken as gone, and the source reconnects (a transient error).
//!
//! Ticks are counted, not wall time: the pipeline ticks only while it waits for the source, so
//! a pipeline that was busy elsewhere (a slow Kafka commit) is never mistaken for silence.

use crate::error::SourceError;

/// What the source should do at this tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The server was heard from lately.
    Alive,
    /// Quiet for a while: ask the server for a sign of life (PostgreSQL), if the source can.
    Probe,
    /// Nothing for too long: the connection is taken as dead.
    Dead,
}

/// Counts silent ticks of one connection.
#[derive(Debug, Clone)]
pub struct Silence {
    heard: bool,
    silent_ticks: u32,
    probe_after: u32,
    dead_after: u32,
}

impl Silence {
    /// A counter that asks for a probe after `probe_after` silent ticks and declares the
    /// connection dead after `dead_after` (both at least 1, `dead_after` > `probe_after`).
    pub fn new(probe_after: u32, dead_after: u32) -> Self {
        let probe_after = probe_after.max(1);
        Self {
            heard: true,
            silent_ticks: 0,
            probe_after,
            dead_after: dead_after.max(probe_after + 1),
        }
    }

    /// The server sent something (a change, a keepalive, a heartbeat).
    pub fn heard(&mut self) {
        self.heard = true;
    }

    /// One pipeline tick passed.
    pub fn tick(&mut self) -> Verdict {
        if std::mem::take(&mut self.heard) {
            self.silent_ticks = 0;
            return Verdict::Alive;
        }
        self.silent_ticks += 1;
        if self.silent_ticks >= self.dead_after {
            Verdict::Dead
        } else if self.silent_ticks == self.probe_after {
            Verdict::Probe
        } else {
            Verdict::Alive
        }
    }

    /// The transient error of a dead connection to `server`.
    pub fn dead_error(&self, server: &str) -> SourceError {
        SourceError::transient(format!(
            "nothing from {server} for {} s (not even a keepalive or heartbeat): the connection \
             looks dead (half-open); reconnecting",
            self.silent_ticks
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_that_is_heard_from_stays_alive() {
        let mut s = Silence::new(3, 6);
        for _ in 0..100 {
            s.heard();
            assert_eq!(s.tick(), Verdict::Alive);
        }
    }

    #[test]
    fn silence_asks_for_a_probe_once_then_declares_the_connection_dead() {
        let mut s = Silence::new(3, 6);
        let verdicts: Vec<Verdict> = (0..7).map(|_| s.tick()).collect();
        use Verdict::*;
        // The first tick consumes the "heard" of the start.
        assert_eq!(verdicts, [Alive, Alive, Alive, Probe, Alive, Alive, Dead]);
        assert!(s.dead_error("PostgreSQL").to_string().contains("half-open"));
    }

    #[test]
    fn an_answer_to_the_probe_starts_the_count_again() {
        let mut s = Silence::new(2, 4);
        s.tick();
        s.tick();
        assert_eq!(s.tick(), Verdict::Probe);
        s.heard();
        assert_eq!(s.tick(), Verdict::Alive);
        assert_eq!(s.tick(), Verdict::Alive);
        assert_eq!(s.tick(), Verdict::Probe);
    }
}
