// Moved to ssh/transport.h (the deployer's layout split); kept until every include is updated.
#pragma once
#include "ssh/transport.h"
