#!/bin/bash
# /usr/iwss/iwsvafw.sh - InterScan Web Security Virtual Appliance firewall
# RECONSTRUCTED for iwss-keeper tests from the excerpt in Trend Micro KB 1120273.
# The vendor's real script is not public; the IPTABLE function below is an assumption.

IPTABLE() {
    case "$1" in
        ipv4) shift; iptables "$@" ;;
        ipv6) shift; ip6tables "$@" ;;
        *) iptables "$@" && ip6tables "$@" ;;
    esac
}

start() {
    IPTABLE -F
    IPTABLE -X
    IPTABLE -P INPUT DROP
    IPTABLE -P FORWARD DROP
    IPTABLE -P OUTPUT ACCEPT

    IPTABLE -A INPUT -i lo -j ACCEPT
    IPTABLE -A INPUT -m state --state ESTABLISHED,RELATED -j ACCEPT # stateful
    IPTABLE ipv4 -A INPUT -p tcp -s 192.0.2.1 -j ACCEPT

    # Create the custom chains
    IPTABLE -N SCAN_SERV_IN
    IPTABLE -N ACL_IN
    IPTABLE -N LOCAL_SERV_IN
    IPTABLE -A INPUT -m state --state INVALID -j DROP
    IPTABLE -A INPUT -j ACL_IN
    IPTABLE -A INPUT -j SCAN_SERV_IN
    IPTABLE -A INPUT -j LOCAL_SERV_IN

    # Services
    IPTABLE -A SCAN_SERV_IN -p tcp --dport 8080 -j ACCEPT
    IPTABLE -A LOCAL_SERV_IN -p tcp --dport 22 -j ACCEPT
    IPTABLE -A LOCAL_SERV_IN -p tcp --dport 8443 -j ACCEPT
    IPTABLE ipv4 -A LOCAL_SERV_IN -p icmp --icmp-type echo-request -j ACCEPT
    IPTABLE ipv6 -A LOCAL_SERV_IN -p ipv6-icmp -j ACCEPT
}

case "$1" in
    start|restart|"") start ;;
    stop) IPTABLE -F; IPTABLE -P INPUT ACCEPT ;;
    *) echo "usage: $0 {start|stop|restart}" >&2; exit 1 ;;
esac
