# bench: make bench prints figures measured side by side in one run.
bench: $(BINARIES) $(GUESTS)
	$(Q)sh bench/portio.sh $(BUILD)
