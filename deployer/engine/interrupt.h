// Ctrl-C during a run: the first SIGINT (or SIGTERM) asks the run to stop after the hosts in
// progress are finished (or rolled back); pauses end early. Commands on hosts are not killed.
#pragma once

#include <chrono>

namespace zdm::deploy {

// Installs the SIGINT/SIGTERM handlers (once; idempotent).
void install_interrupt_handler();
// How many times SIGINT/SIGTERM arrived since the start (or the last reset).
int interrupt_count();
void reset_interrupts();
// Sleeps `d`, returning early (false) when an interrupt arrives.
bool sleep_unless_interrupted(std::chrono::duration<double> d);

}  // namespace zdm::deploy
