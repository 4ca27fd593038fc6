// The Rust peer: hyper + tokio, the stack the original printerfacts used, serving GET /fact over
// a Unix socket (or TCP) on a single-threaded runtime.
use std::convert::Infallible;

use hyper::server::conn::Http;
use hyper::service::service_fn;
use hyper::{Body, Request, Response, StatusCode};

const FACTS: [&str; 4] = [
    "Printers can smell fear, but only in cyan.\n",
    "A group of printers is called a jam.\n",
    "Printers dream in CMYK and wake up in grayscale.\n",
    "The plural of \"printer manual\" is \"unopened\".\n",
];

async fn handle(req: Request<Body>, n: usize) -> Result<Response<Body>, Infallible> {
    if req.uri().path() != "/fact" {
        return Ok(Response::builder().status(StatusCode::NOT_FOUND).body(Body::empty()).unwrap());
    }
    Ok(Response::builder()
        .header("Content-Type", "text/plain; charset=utf-8")
        .body(Body::from(FACTS[n % FACTS.len()]))
        .unwrap())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let addr = std::env::args().nth(1).expect("usage: printerfacts-bench-hyper unix:PATH|tcp:HOST:PORT");
    let mut counter = 0usize;
    if let Some(path) = addr.strip_prefix("unix:") {
        let _ = std::fs::remove_file(path);
        let listener = tokio::net::UnixListener::bind(path).unwrap();
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            counter = counter.wrapping_add(7);
            let n = counter;
            tokio::task::spawn(async move {
                let _ = Http::new().http1_only(true).serve_connection(stream, service_fn(move |r| handle(r, n))).await;
            });
        }
    } else {
        let listener = tokio::net::TcpListener::bind(addr.trim_start_matches("tcp:")).await.unwrap();
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            stream.set_nodelay(true).unwrap();
            counter = counter.wrapping_add(7);
            let n = counter;
            tokio::task::spawn(async move {
                let _ = Http::new().http1_only(true).serve_connection(stream, service_fn(move |r| handle(r, n))).await;
            });
        }
    }
}
