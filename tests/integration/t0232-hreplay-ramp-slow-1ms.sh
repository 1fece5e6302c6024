#!/usr/bin/env bash
# hkit-test: serial
# t0231 with fixtures/consumers/slow_1ms.py: the ramp's maximum sustainable rate is within +-20%
# of the consumer's drain-measured capacity, at QoS 0 and QoS 1.
exec bash "$HKIT_SOURCE_DIR/tests/integration/t0231-hreplay-ramp-slow-5ms.sh" 1ms
