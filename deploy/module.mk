# deploy/ — `make install [PREFIX=/usr/local] [DESTDIR=]`: the programs,
# the systemd units (ExecStart pointed at $(BINDIR)), the example configs
# (into $(SYSCONFDIR)/fovea, never over an existing file) and the docs.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
UNITDIR    ?= $(PREFIX)/lib/systemd/system
DOCDIR     ?= $(PREFIX)/share/doc/fovea
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
INSTALL_PROGRAMS = $(filter-out $(BIN)/fovea-bench,$(PROGRAMS))

install: programs
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR)/examples \
		$(DESTDIR)$(SYSCONFDIR)/fovea
	install -m 0755 $(INSTALL_PROGRAMS) $(DESTDIR)$(BINDIR)/
	for u in deploy/systemd/*; do \
		sed 's|/usr/bin/|$(BINDIR)/|g' $$u >$(DESTDIR)$(UNITDIR)/$$(basename $$u) && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$(basename $$u) || exit 1; done
	for c in deploy/conf/*.conf; do \
		install -m 0644 $$c $(DESTDIR)$(DOCDIR)/examples/ && \
		{ [ -e $(DESTDIR)$(SYSCONFDIR)/fovea/$$(basename $$c) ] || \
		  install -m 0644 $$c $(DESTDIR)$(SYSCONFDIR)/fovea/; } || exit 1; done
	install -m 0644 deploy/fovea.conf deploy/fashion-mnist.labels $(wildcard deploy/fashion-mnist.conf deploy/augment-remote.conf.example) \
		$(DESTDIR)$(DOCDIR)/examples/
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/

.PHONY: install
