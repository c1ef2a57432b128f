"""A PBX's call layer over fakes: a SIP stack, a clock, media ports and phones, all in memory.

Nothing here opens a socket or reads the time.

- `clock`: the fake clock and its timers, and a wall clock (dates, time zones) moving with it.
- `media`: the media ports and the RTP endpoints they hand out (announcements last their
  length on the fake clock; recordings write real WAV files), the menus' prompts, and
  voicemail's speech (`FakeSpeech`) and blocking work done inline (`inline`).
- `sip`: the SIP stack the call layer sends through.
- `directory`: the office's extensions and carrier trunk, registrations and trunk addresses.
- `phones`: `Phone`, one registered device played by the test, and `Dialled`, a call it placed.
- `office`: `office()`, the call layer wired as `Engine` wires it (auto-attendants, hunt
  memory, recording announcements by phone, voicemail), and `Pbx`, its driver.
"""
