# %post: install (or refresh, on upgrade) the hook scripts and enable the boot guard.
# register is idempotent and takes a baseline snapshot; its output says what it did.
/usr/sbin/iwss-keeper register
