//! The reader of a call's options, one option group per method, as iptables' `getopt_long`
//! loop reads them.

use super::*;

/// Reads a call's options as iptables reads them, one option group per method; each method
/// takes the option at `args[i]` and returns where the next one starts.
pub(super) struct Reader<'a> {
    pub(super) family: Option<Family>,
    /// The version whose reading this is (never [`Iptables::Any`]).
    pub(super) iptables: Iptables,
    /// Whether only the restorable grammar is read ([`Reader::check_restorable`]).
    pub(super) restorable: bool,
    /// Option words written `--name=value` (indexes into the split arguments).
    pub(super) assigned: Vec<usize>,
    pub(super) call: Call<'a>,
    pub(super) matches: Matches,
}

impl<'a> Reader<'a> {
    /// Reads every option; `Ok(false)`: a command that adds no rule.
    pub(super) fn read(&mut self, args: &[&'a str]) -> Result<bool, String> {
        let mut negate = false;
        let mut i = 0;
        while i < args.len() {
            if args[i] == "!" {
                if negate {
                    return err("multiple `!' flags not allowed");
                }
                negate = true;
                i += 1;
                continue;
            }
            let neg = std::mem::take(&mut negate);
            let opt = self.name_option(args[i])?;
            self.check_version(opt, args, i)?;
            if self.restorable {
                self.check_restorable(opt, args, i)?;
            }
            i = match opt {
                Opt::Command => return Ok(false),
                Opt::Append | Opt::Insert => self.command(opt, args, i)?,
                Opt::Table => self.table(args, i)?,
                Opt::Source | Opt::Destination | Opt::InInterface | Opt::OutInterface => {
                    self.address_or_interface(opt, neg, args, i)?
                }
                Opt::Protocol | Opt::Fragment => self.protocol_or_fragment(opt, neg, args, i)?,
                Opt::Match | Opt::Jump | Opt::RejectWith => self.extension(opt, neg, args, i)?,
                Opt::Other(name) => self.match_option(name, neg, args, i)?,
                Opt::Counters => self.counters(neg, args, i)?,
                _ => self.general(opt, args, i)?,
            };
        }
        if negate {
            return err("a trailing `!'");
        }
        Ok(true)
    }

    /// What one version of iptables refuses that the other reads: 1.8 reads the value of
    /// `--source=ADDR` (and of the other options it parses from the word itself) as the whole
    /// word; 1.4.21 has no `-W` / `--wait-interval` and no seconds after `-w`.
    fn check_version(&self, opt: Opt, args: &[&'a str], i: usize) -> Result<(), String> {
        let whole_word = matches!(
            opt,
            Opt::Source | Opt::Destination | Opt::Protocol | Opt::Jump | Opt::InInterface | Opt::OutInterface
        );
        match self.iptables {
            Iptables::V1_8 if whole_word && self.assigned.contains(&i) => {
                err(format!("`{}={}' is one word to iptables 1.8", args[i], args[i + 1]))
            }
            Iptables::V1_4 if opt == Opt::WaitInterval || (opt == Opt::Wait && self.assigned.contains(&i)) => {
                err(format!("unknown option \"{}\" (iptables 1.4.21)", args[i]))
            }
            _ => Ok(()),
        }
    }

    /// The restorable grammar: a line written back may use only `-A`/`-I`, `-s`, `-d`, `-p`,
    /// `-i`, `-o`, `-m` and `-j` (short, or long spelled in full), the options of the matches
    /// the model reads (spelled in full), and after the target only its own options; no
    /// `--opt=value`, `--modprobe`, `-w`, `-t`, counters or anything else.
    fn check_restorable(&self, opt: Opt, args: &[&'a str], i: usize) -> Result<(), String> {
        let assigned = self.assigned.contains(&i);
        let word = if assigned {
            format!("{}={}", args[i], args[i + 1])
        } else {
            args[i].to_string()
        };
        if self.call.target.is_some() && opt != Opt::RejectWith {
            return err(format!("target option {word:?} is not one the tool restores"));
        }
        let allowed = matches!(
            opt,
            Opt::Append
                | Opt::Insert
                | Opt::Source
                | Opt::Destination
                | Opt::Protocol
                | Opt::InInterface
                | Opt::OutInterface
                | Opt::Match
                | Opt::Jump
                | Opt::RejectWith
                | Opt::Other(_)
        );
        let in_full = match (args[i].strip_prefix("--"), opt) {
            (None, _) => true,
            (Some(long), Opt::Other(name)) => long == name,
            (Some(long), Opt::RejectWith) => long == "reject-with",
            (Some(long), _) => BASE_LONG.iter().any(|(n, o)| *n == long && *o == opt),
        };
        if !allowed || !in_full || assigned {
            return err(format!("option {word:?} is not one the tool restores"));
        }
        Ok(())
    }

    /// `-c PACKETS BYTES` or `-c PACKETS,BYTES` (`--set-counters`): read as iptables reads
    /// them (each a C `%llu`) and left out of the rule: counters do not change what it is.
    fn counters(&mut self, neg: bool, args: &[&'a str], i: usize) -> Result<usize, String> {
        if neg {
            return err("cannot have ! before -c");
        }
        if std::mem::replace(&mut self.call.counters, true) {
            return err("multiple -c flags not allowed");
        }
        let packets = value(args, i)?;
        let after_first = packets.char_indices().nth(1).map_or(packets.len(), |(at, _)| at);
        let (bytes, next) = match packets[after_first..].find(',') {
            Some(at) => (Some(&packets[after_first + at + 1..]), i + 2),
            None => match args.get(i + 2) {
                Some(b) if !b.starts_with('-') && !b.starts_with('!') => (Some(*b), i + 3),
                _ => (None, i + 2),
            },
        };
        let Some(bytes) = bytes else {
            return err("-c requires packet and byte counter");
        };
        // `sscanf("%llu")`: blanks, a sign, then a digit; the rest is ignored.
        let numeric = |t: &str| {
            let t = t.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
            let t = t.strip_prefix(['+', '-']).unwrap_or(t);
            t.starts_with(|c: char| c.is_ascii_digit())
        };
        if packets.is_empty() || !numeric(packets) {
            return err("-c packet counter not numeric");
        }
        if !numeric(bytes) {
            return err("-c byte counter not numeric");
        }
        Ok(next)
    }

    /// Names an option word: a short letter, or a long name resolved among those known now.
    fn name_option(&mut self, word: &str) -> Result<Opt<'static>, String> {
        if let Some(long) = word.strip_prefix("--").filter(|w| !w.is_empty()) {
            let loaded = self.matches.0.iter().flat_map(|m| m.opts().iter().copied());
            let target_opts: &[&'static str] = match self.call.target.map(|t| t.0) {
                Some("REJECT") => &["reject-with"],
                _ => &[],
            };
            return match resolve(long, loaded.chain(target_opts.iter().copied()))? {
                Some(opt) => Ok(opt),
                None => self.implicit_match(long, word),
            };
        }
        match word.strip_prefix('-') {
            Some(letter) if letter.len() == 1 => Ok(Opt::short(letter.as_bytes()[0])),
            _ => err(format!("unexpected argument \"{word}\"")),
        }
    }

    /// An option of the protocol's own match (`-p tcp`, `udp`, `icmp`) loads it, as iptables
    /// does.
    fn implicit_match(&mut self, long: &str, word: &str) -> Result<Opt<'static>, String> {
        let own = match self.call.proto {
            Some((false, 6)) => Some(MatchKind::Tcp),
            Some((false, 17)) => Some(MatchKind::Udp),
            Some((false, 1)) => Some(MatchKind::Icmp),
            _ => None,
        };
        let unknown = || format!("unknown option \"{word}\"");
        let kind = own.filter(|k| !self.matches.has(*k)).ok_or_else(unknown)?;
        let opt = resolve(long, MATCHES[kind as usize].2.iter().copied())?.ok_or_else(unknown)?;
        self.matches.load(kind)?;
        Ok(opt)
    }

    /// `-A CHAIN` or `-I CHAIN [N]`.
    fn command(&mut self, opt: Opt, args: &[&'a str], i: usize) -> Result<usize, String> {
        if self.call.command.is_some() {
            return err("only one command may be given");
        }
        let chain = value(args, i)?;
        if !chain_name(chain) {
            return err(format!("chain name `{chain}' is not one the tool reads"));
        }
        self.call.command = Some(chain);
        let number = args
            .get(i + 2)
            .filter(|n| opt == Opt::Insert && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        match number {
            Some(n) if n.parse::<u32>().map_or(true, |n| n == 0) => err("invalid rule number"),
            Some(_) => Ok(i + 3),
            None => Ok(i + 2),
        }
    }

    /// `-t TABLE`.
    fn table(&mut self, args: &[&'a str], i: usize) -> Result<usize, String> {
        if self.call.table.is_some() {
            return err("multiple -t flags not allowed");
        }
        let t = value(args, i)?;
        if !["filter", "nat", "mangle", "raw", "security"].contains(&t) {
            return err(format!("table `{t}' is not one the tool reads"));
        }
        self.call.table = Some(t);
        Ok(i + 2)
    }

    /// `-s`, `-d` (read in the rule's family once it is known), `-i`, `-o`.
    fn address_or_interface(&mut self, opt: Opt, neg: bool, args: &[&'a str], i: usize) -> Result<usize, String> {
        let v = value(args, i)?;
        if matches!(opt, Opt::InInterface | Opt::OutInterface) {
            interface(v)?;
        }
        let (slot, letter) = match opt {
            Opt::Source => (&mut self.call.src, 's'),
            Opt::Destination => (&mut self.call.dst, 'd'),
            Opt::InInterface => (&mut self.call.iif, 'i'),
            _ => (&mut self.call.oif, 'o'),
        };
        if slot.is_some() {
            return err(format!("multiple -{letter} flags not allowed"));
        }
        *slot = Some((neg, v));
        Ok(i + 2)
    }

    /// `-p PROTOCOL` or `-f`.
    fn protocol_or_fragment(&mut self, opt: Opt, neg: bool, args: &[&'a str], i: usize) -> Result<usize, String> {
        if opt == Opt::Fragment {
            if self.family == Some(Family::V6) {
                return err("`-f' is not supported in IPv6");
            }
            if self.call.frag.is_some() {
                return err("multiple -f flags not allowed");
            }
            self.call.frag = Some(neg);
            return Ok(i + 1);
        }
        if self.call.proto.is_some() {
            return err("multiple -p flags not allowed");
        }
        let n = protocol(value(args, i)?)?;
        if n == 0 && neg {
            return err("rule would never match protocol");
        }
        self.call.proto = Some((neg, n));
        Ok(i + 2)
    }

    /// `-m MATCH`, `-j TARGET`, `--reject-with TYPE`.
    fn extension(&mut self, opt: Opt, neg: bool, args: &[&'a str], i: usize) -> Result<usize, String> {
        match opt {
            Opt::Match => {
                if neg {
                    return err("unexpected ! flag before --match");
                }
                let v = value(args, i)?;
                let Some((_, kind, _)) = MATCHES.iter().find(|(n, _, _)| *n == v) else {
                    return err(format!("match `{v}' is not one the tool reads"));
                };
                self.matches.load(*kind)?;
            }
            Opt::Jump => {
                if neg {
                    return err("cannot have ! before -j");
                }
                if self.call.target.is_some() {
                    return err("multiple -j flags not allowed");
                }
                let t = value(args, i)?;
                if self.restorable && t.contains('.') {
                    return err(format!("target {t:?} is not one the tool restores"));
                }
                if !target_name(t) {
                    return err(format!("target `{t}' is not one the tool reads"));
                }
                self.call.target = Some((t, None));
            }
            _ => {
                let v = value(args, i)?;
                let Some(v) = REJECT_WITH.iter().find(|k| **k == v) else {
                    return err(format!("--reject-with `{v}' is not read"));
                };
                if let Some((_, with)) = self.call.target.as_mut() {
                    *with = Some(v);
                }
            }
        }
        Ok(i + 2)
    }

    /// Options that change no rule: `-w [SECONDS]`, `-W`, `--modprobe`, `-v`, `-4`, `-6`.
    fn general(&self, opt: Opt, args: &[&'a str], i: usize) -> Result<usize, String> {
        match opt {
            Opt::Wait => {
                // 1.4.21's `-w` takes no seconds.
                let seconds = self.iptables == Iptables::V1_8
                    && args
                        .get(i + 1)
                        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
                Ok(i + 1 + usize::from(seconds))
            }
            Opt::WaitInterval | Opt::Modprobe => value(args, i).map(|_| i + 2),
            Opt::Ipv4 if self.family == Some(Family::V6) => err("this is the IPv6 version of ip6tables"),
            Opt::Ipv6 if self.family != Some(Family::V6) => err("this is the IPv4 version of iptables"),
            _ => Ok(i + 1),
        }
    }

    /// An option of a loaded match (long names only from here on).
    fn match_option(&mut self, name: &str, neg: bool, args: &[&'a str], i: usize) -> Result<usize, String> {
        let proto = self.call.proto;
        let Some((m, at)) = self
            .matches
            .0
            .iter_mut()
            .rev()
            .find_map(|m| m.opts().iter().position(|o| *o == name).map(|at| (m, at)))
        else {
            return err(format!("unknown option \"{}\"", args[i]));
        };
        match_option(m, at, neg, value(args, i)?, proto)?;
        Ok(i + 2)
    }
}
