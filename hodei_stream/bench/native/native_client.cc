// The benchmark's native baseline: a C++ gRPC client that follows one job's log.
//
//   native_client TARGET JOB_ID           each entry's line on stdout, flushed at once
//   native_client --record TARGET JOB_ID  keep "<arrival_ns> <line>" in memory, print all at
//                                         the end (fan-out: 200 of these cost the bench no reading)
//
// TARGET is a gRPC target ("unix:/path" or "host:port").  Built by `python -m
// hodei_stream.bench --setup` with Debian's libgrpc++-dev and protobuf-compiler-grpc.
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <utility>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "hodei.grpc.pb.h"

static long long now_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);  // the clock the job stamps its lines with
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char** argv) {
  const bool record = argc > 1 && std::strcmp(argv[1], "--record") == 0;
  const int first = record ? 2 : 1;
  if (argc - first != 2) {
    std::fprintf(stderr, "usage: native_client [--record] TARGET JOB_ID\n");
    return 2;
  }
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(64 << 20);  // 1 MiB lines fit, as in stream-logs
  auto channel = grpc::CreateCustomChannel(argv[first], grpc::InsecureChannelCredentials(), arguments);
  auto stub = hodei::LogStreamService::NewStub(channel);
  grpc::ClientContext context;
  hodei::SubscribeLogsRequest request;
  request.set_job_id(argv[first + 1]);
  request.set_include_history(true);
  auto reader = stub->SubscribeLogs(&context, request);
  hodei::JobLogEntry entry;
  std::vector<std::pair<long long, std::string>> recorded;
  while (reader->Read(&entry)) {
    if (record) {
      recorded.emplace_back(now_ns(), entry.line());
      continue;
    }
    const std::string& line = entry.line();
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }
  const grpc::Status status = reader->Finish();
  for (const auto& [arrived_ns, line] : recorded) {
    std::printf("%lld %s\n", arrived_ns, line.c_str());
  }
  std::fflush(stdout);
  if (!status.ok()) {
    std::fprintf(stderr, "native_client: %s\n", status.error_message().c_str());
    return 1;
  }
  return 0;
}
