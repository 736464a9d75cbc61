// The benchmark's native baseline: a C++ gRPC client that follows one job's log.
//
//   native_client TARGET JOB_ID           each entry's line on stdout, flushed at once
//   native_client --streams N TARGET JOB_ID...
//                                         N followers in this one process, follower i on
//                                         JOB_ID[i % count], each on its own channel (its own
//                                         connection, as N users would be); one thread drives
//                                         them all with the async API, keeping
//                                         "<follower> <arrival_ns> <line>" per line, all printed
//                                         at the end (fan-out and load: the followers cost
//                                         the server the least CPU a gRPC client can)
//
// TARGET is a gRPC target ("unix:/path" or "host:port").  Built by `python -m
// hodei_stream.bench --setup` with Debian's libgrpc++-dev and protobuf-compiler-grpc.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <memory>
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

static std::shared_ptr<grpc::Channel> open_channel(const char* target, bool own_connection) {
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(64 << 20);  // 1 MiB lines fit, as in stream-logs
  if (own_connection) {
    // Channels with the same arguments share one connection otherwise.
    arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  }
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), arguments);
}

// One follower of --streams: its call, the entry being read, and what it kept.
struct Follower {
  enum class Step { kStarting, kReading, kFinishing };
  std::unique_ptr<hodei::LogStreamService::Stub> stub;
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientAsyncReader<hodei::JobLogEntry>> reader;
  hodei::JobLogEntry entry;
  grpc::Status status;
  Step step = Step::kStarting;
  // A deque, not a vector: a vector's doubling moves all it holds, and the followers of one
  // job double at the same line (4,096, 8,192, ...), stalling this one thread for tens of
  // milliseconds that the fan-out scenario then reported as the server's latency.
  std::deque<std::pair<long long, std::string>> recorded;
};

static int follow_many(int count, const char* target, char** job_ids, int job_count) {
  grpc::CompletionQueue queue;
  std::vector<std::unique_ptr<Follower>> followers;
  for (int i = 0; i < count; ++i) {
    auto follower = std::make_unique<Follower>();
    follower->stub = hodei::LogStreamService::NewStub(open_channel(target, true));
    hodei::SubscribeLogsRequest request;
    request.set_job_id(job_ids[i % job_count]);
    request.set_include_history(true);
    follower->reader = follower->stub->PrepareAsyncSubscribeLogs(&follower->context, request, &queue);
    follower->reader->StartCall(follower.get());
    followers.push_back(std::move(follower));
  }
  int running = count;
  void* tag = nullptr;
  bool ok = false;
  while (running > 0 && queue.Next(&tag, &ok)) {
    auto* follower = static_cast<Follower*>(tag);
    switch (follower->step) {
      case Follower::Step::kReading:
        if (ok) {
          follower->recorded.emplace_back(now_ns(), follower->entry.line());
          follower->reader->Read(&follower->entry, follower);
          break;
        }
        follower->step = Follower::Step::kFinishing;
        follower->reader->Finish(&follower->status, follower);
        break;
      case Follower::Step::kStarting:
        if (ok) {
          follower->step = Follower::Step::kReading;
          follower->reader->Read(&follower->entry, follower);
        } else {
          follower->step = Follower::Step::kFinishing;
          follower->reader->Finish(&follower->status, follower);
        }
        break;
      case Follower::Step::kFinishing:
        --running;
        break;
    }
  }
  int failed = 0;
  for (int i = 0; i < count; ++i) {
    for (const auto& [arrived_ns, line] : followers[i]->recorded) {
      std::printf("%d %lld %s\n", i, arrived_ns, line.c_str());
    }
    if (!followers[i]->status.ok()) {
      std::fprintf(stderr, "native_client: follower %d: %s\n", i, followers[i]->status.error_message().c_str());
      ++failed;
    }
  }
  std::fflush(stdout);
  return failed ? 1 : 0;
}

int main(int argc, char** argv) {
  if (argc >= 5 && std::strcmp(argv[1], "--streams") == 0) {
    const int count = std::atoi(argv[2]);
    if (count > 0) {
      return follow_many(count, argv[3], argv + 4, argc - 4);
    }
  }
  if (argc != 3) {
    std::fprintf(stderr, "usage: native_client TARGET JOB_ID | --streams N TARGET JOB_ID...\n");
    return 2;
  }
  auto stub = hodei::LogStreamService::NewStub(open_channel(argv[1], false));
  grpc::ClientContext context;
  hodei::SubscribeLogsRequest request;
  request.set_job_id(argv[2]);
  request.set_include_history(true);
  auto reader = stub->SubscribeLogs(&context, request);
  hodei::JobLogEntry entry;
  while (reader->Read(&entry)) {
    const std::string& line = entry.line();
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }
  const grpc::Status status = reader->Finish();
  if (!status.ok()) {
    std::fprintf(stderr, "native_client: %s\n", status.error_message().c_str());
    return 1;
  }
  return 0;
}
