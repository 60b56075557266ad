// Asio conventions of the proxy: errors as values via redirect_error (net::nothrow), one writer
// coroutine per socket (net/frame_writer.h) over a plain or TLS stream (net/stream.h); each worker
// thread runs its own io_context and owns the connections on it.
#pragma once

#include "common/net/frame_writer.h"
#include "common/net/stream.h"

namespace zdm::proxy {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using net::awaitable;
using net::nothrow;

}  // namespace zdm::proxy
