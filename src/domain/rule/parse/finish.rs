//! The checks iptables makes once every option is read, and the rule as `iptables -S` prints
//! it.

use super::*;

/// The final checks each extension makes, then the rule as `iptables -S` prints it.
pub(super) fn finish(family: Option<Family>, call: Call, matches: &Matches) -> Result<Option<Rule>, String> {
    let Some(chain) = call.command else {
        return Ok(None);
    };
    let table = call.table.unwrap_or("filter");
    check_call(&call, chain, matches)?;
    // Addresses in the family the rule reaches: the written one, else the one the addresses
    // imply (a colon is IPv6), else IPv4 and IPv6 alike only when there is no address.
    let v6 = match family {
        Some(Family::V6) => true,
        Some(Family::V4) => false,
        None => [call.src.as_ref(), call.dst.as_ref()]
            .iter()
            .flatten()
            .any(|(_, a)| a.contains(':')),
    };
    let (src, dst) = (read_address(call.src, v6)?, read_address(call.dst, v6)?);
    let reach = match family {
        None if src.is_none() && dst.is_none() => V4 | V6,
        _ if v6 => V6,
        _ => V4,
    };
    if reach & V6 != 0 && matches.has(MatchKind::Icmp) {
        return err("ip6tables has no --icmp-type (it is -p icmpv6 --icmpv6-type)");
    }
    let mut canonical = String::with_capacity(128);
    print_rule(&mut canonical, table, chain, &call, [&src, &dst], matches);
    let accept = call.target.is_some_and(|(t, _)| t == "ACCEPT");
    let input_accept = accept && table == "filter" && chain == "INPUT";
    // The article's custom rule: the filter table's INPUT chain accepts a literal address or
    // network; the any-address prints no `-s` at all.
    let custom = input_accept && src.as_ref().is_some_and(|(neg, _)| !neg);
    let stateful = input_accept && matches.0.iter().any(|m| m.related_established);
    let key = RuleKey::new(&canonical, reach, custom, stateful, source_of(&src));
    Ok(Some(Rule {
        family,
        canonical: canonical.into_boxed_str(),
        key,
    }))
}

/// The checks iptables makes once every option is read: each match's needs, and interfaces
/// the chain can see.
pub(super) fn check_call(call: &Call, chain: &str, matches: &Matches) -> Result<(), String> {
    let proto = call.proto;
    for m in &matches.0 {
        match m.kind {
            MatchKind::Tcp | MatchKind::Udp | MatchKind::Icmp => {
                let want = match m.kind {
                    MatchKind::Tcp => 6,
                    MatchKind::Udp => 17,
                    _ => 1,
                };
                if proto != Some((false, want)) {
                    return err(format!("the {} match needs `-p {}'", m.name(), m.name()));
                }
            }
            MatchKind::State | MatchKind::Conntrack if m.given == 0 => {
                return err(format!("the {} match needs a state", m.name()));
            }
            MatchKind::Multiport => {
                if m.given == 0 {
                    return err("the multiport match needs a port list");
                }
                if !matches!(proto, Some((false, 6 | 17 | 132 | 33 | 136))) {
                    return err("multiport needs `-p tcp', `-p udp', `-p udplite', `-p sctp' or `-p dccp'");
                }
            }
            MatchKind::Comment if m.given == 0 => return err("the comment match needs --comment"),
            _ => {}
        }
    }
    if call.oif.is_some() && matches!(chain, "INPUT" | "PREROUTING") {
        return err(format!("can't use -o with {chain}"));
    }
    if call.iif.is_some() && matches!(chain, "OUTPUT" | "POSTROUTING") {
        return err(format!("can't use -i with {chain}"));
    }
    Ok(())
}

/// An `-s` or `-d` value in the rule's family; `None` for the any-address.
pub(super) fn read_address(slot: Base, v6: bool) -> Result<Option<(bool, Net)>, String> {
    let Some((neg, text)) = slot else {
        return Ok(None);
    };
    match network(text, v6)? {
        Some(n) => Ok(Some((neg, n))),
        None if neg => err("cannot negate the any-address"),
        None => Ok(None),
    }
}

/// What a read source names.
pub(super) fn source_of(src: &Option<(bool, Net)>) -> Source {
    let prefix = |mask_bits: u32, trailing: u32, width: u32| {
        if mask_bits + trailing == width {
            Source::Prefix(mask_bits as u8)
        } else {
            Source::NonContiguous
        }
    };
    match src {
        None => Source::Any,
        Some((_, Net::V4((_, mask)))) => prefix(mask.leading_ones(), mask.trailing_zeros(), 32),
        Some((_, Net::Text(text))) if text.contains(',') => Source::List(text.split(',').count() as u32),
        // An IPv6 network as printed: `ADDR/BITS`, or `ADDR/MASK` when the mask is not one.
        Some((_, Net::Text(text))) => match text.rsplit_once('/').map(|(_, m)| m.parse::<u8>()) {
            Some(Ok(bits)) => Source::Prefix(bits),
            _ => Source::NonContiguous,
        },
    }
}

/// The rule as `iptables -S` prints it, into `out`.
pub(super) fn print_rule(
    out: &mut String,
    table: &str,
    chain: &str,
    call: &Call,
    [src, dst]: [&Option<(bool, Net)>; 2],
    matches: &Matches,
) {
    if table != "filter" {
        let _ = write!(out, "-t {table} ");
    }
    let _ = write!(out, "-A {chain}");
    // ` [!] -x ` before a value.
    let flag = |out: &mut String, neg: bool, f: &str| {
        out.push_str(if neg { " ! " } else { " " });
        out.push_str(f);
        out.push(' ');
    };
    for (slot, f) in [(src, "-s"), (dst, "-d")] {
        if let Some((neg, net)) = slot {
            flag(out, *neg, f);
            net.push_to(out);
        }
    }
    for (slot, f) in [(&call.iif, "-i"), (&call.oif, "-o")] {
        if let Some((neg, v)) = slot {
            flag(out, *neg, f);
            out.push_str(v);
        }
    }
    if let Some((neg, n)) = call.proto.filter(|(_, n)| *n != 0) {
        flag(out, neg, "-p");
        out.push_str(&names::get().protocol_name(n));
    }
    if let Some(neg) = call.frag {
        out.push_str(if neg { " ! -f" } else { " -f" });
    }
    for m in &matches.0 {
        let _ = write!(out, " -m {}{}", m.name(), m.text);
    }
    if let Some((t, with)) = call.target {
        let _ = write!(out, " -j {t}");
        if let Some(w) = with.or((t == "REJECT").then_some("icmp-port-unreachable")) {
            let _ = write!(out, " --reject-with {w}");
        }
    }
}
