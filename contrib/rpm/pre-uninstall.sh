# %preun: on erase only ($1 = 0; an upgrade passes 1), remove the hook scripts and disable the
# boot guard. Snapshots in /var/lib/iwss-keeper stay: they are the evidence of what was kept.
if [ "$1" -eq 0 ]; then
    /usr/sbin/iwss-keeper unregister
fi
