//! `lowtouch serve`: the long-running management server. It listens for GitHub webhooks
//! (signature-checked), polls the pipelines' repositories on a schedule, fires
//! `schedule:` patterns, runs `continuous:` pipelines whenever their environment would
//! be idle, starts `on_event` scenarios when a daemon reports what they listen for, and
//! runs what people ask for through its local API (a Unix socket beside the store).
//!
//! Every cause arrives as a typed [`Wake`] on one channel. A poll round (fetch, detect,
//! classify) runs one at a time; deliveries that arrive meanwhile coalesce into the next.
//! Runs are jobs for the [`scheduler`]: one at a time per environment, side by side on
//! different environments — a team with ten environments does not queue them behind
//! each other. Each run has its own [`RunControl`]: `lowtouch cancel RUN` stops that one,
//! a new candidate pre-empts a continuous run at its next scenario boundary, Ctrl-C or
//! SIGTERM stops them all (what was done is stored as interrupted) and the server ends.
//!
//! The loop decides; what a job does is [`Work`]'s: the application in production, a fake
//! in the loop's tests.

pub mod daemons;
pub mod hooks;
pub mod scheduler;
pub mod triggers;
pub mod wake;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::api::server::{ClientSink, Executor, Local};
use crate::app::activity::Now;
use crate::app::round::{Round, Scope};
use crate::app::{Activity, App, Error, Ran, RunOutcome, RunRequest, Trigger, exit};
use crate::console::{Sink, Stream, Timestamped};
use crate::pipeline::Pipeline;
use crate::process::control::RunControl;
use crate::webhook_listener::{BodyBudget, Limits};
use scheduler::{Needs, Scheduler};
pub use wake::{ApiRun, Wake};

/// How the server is set up (`lowtouch serve`'s flags).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where webhooks arrive.
    pub listen: String,
    /// Where daemons dial in.
    pub router: String,
    /// How often to poll the repositories without a webhook.
    pub poll_interval: Duration,
    /// The pipelines to serve (empty: every one with something to serve).
    pub pipelines: Vec<String>,
}

/// What the server's jobs do. The application does the real work; the loop's tests
/// give it a fake.
pub trait Work: Send + Sync + 'static {
    /// Runs one request under `control`.
    fn run(&self, request: &RunRequest, control: &RunControl) -> Result<Ran, Error>;
    /// One round: what each of the `only` pipelines (or all) must redo.
    fn round(&self, only: &[String], scope: &Scope) -> Result<Round, Error>;
    /// Posts a run's verdict where its pipelines say.
    fn publish(&self, outcome: &RunOutcome);
    /// The pipelines served (read again every time: the repository may change them).
    fn served(&self, only: &[String]) -> Vec<Pipeline>;
    /// A control for a new run.
    fn control(&self) -> RunControl;
    /// Whether the process must stop (Ctrl-C, SIGTERM).
    fn stopping(&self) -> bool;
    /// Whether another process runs on `environment` (its lease).
    fn leased(&self, environment: &str) -> bool;
    /// The environments a request will run on, as far as can be known before it runs.
    fn environments(&self, request: &RunRequest) -> Vec<String>;
}

impl Work for App {
    fn run(&self, request: &RunRequest, control: &RunControl) -> Result<Ran, Error> {
        self.run_with(request, control)
    }

    fn round(&self, only: &[String], scope: &Scope) -> Result<Round, Error> {
        let pipelines = self.watched_pipelines(only)?;
        if pipelines.is_empty() {
            return Ok(Round::default());
        }
        self.plan_round(&pipelines, false, scope)
    }

    fn publish(&self, outcome: &RunOutcome) {
        App::publish(self, outcome)
    }

    fn served(&self, only: &[String]) -> Vec<Pipeline> {
        triggers::served(self.project().root(), only)
    }

    fn control(&self) -> RunControl {
        self.new_control()
    }

    fn stopping(&self) -> bool {
        self.shutting_down()
    }

    fn leased(&self, environment: &str) -> bool {
        self.store()
            .and_then(|s| Ok(s.leases()?))
            .map(|leases| leases.iter().any(|l| l.environment == environment))
            .unwrap_or(false)
    }

    fn environments(&self, request: &RunRequest) -> Vec<String> {
        let mut envs: Vec<String> = self
            .select(&request.selection)
            .map(|ps| ps.into_iter().map(|p| p.environment).collect())
            .unwrap_or_default();
        envs.sort();
        envs.dedup();
        envs
    }
}

/// Builds the local API's executor once the server knows its application and its wake
/// channel (the command line parses what clients send; the server runs it).
pub type Commands = Box<dyn FnOnce(Arc<App>, UnboundedSender<Wake>) -> Executor + Send>;

/// Runs the server until Ctrl-C or SIGTERM; returns its exit code (130).
/// Its own lines carry the time (every thread of its runtime writes through one
/// [`Timestamped`] log); a client's command still writes to that client, unstamped.
pub fn serve(app: App, settings: Settings, commands: Commands) -> Result<i32, Error> {
    let log: Arc<dyn Sink> = Arc::new(Timestamped::new(crate::console::current()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start({
            let log = log.clone();
            move || crate::console::install(log.clone())
        })
        .build()
        .map_err(|e| Error::infra(format!("cannot start the server's runtime: {e}")))?;
    crate::console::capture(log, || {
        runtime.block_on(start(Arc::new(app), settings, commands))
    })
}

async fn start(app: Arc<App>, settings: Settings, commands: Commands) -> Result<i32, Error> {
    let secret = std::env::var("LOWTOUCH_WEBHOOK_SECRET")
        .ok()
        .filter(|s| !s.is_empty());
    if secret.is_none() {
        crate::errln!(
            "note: LOWTOUCH_WEBHOOK_SECRET is not set: /hooks/github answers 503 to every delivery"
        );
    }
    // A daemon secret too short to use is refused before anything says it listens.
    if let Some(daemons) = std::env::var("LOWTOUCH_DAEMON_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
    {
        crate::net::auth::check_secret(daemons.as_bytes())?;
    }
    // Webhook peers may hold at most a quarter of the descriptors (see webhook_listener):
    // the store, runs and the local API keep the rest.
    let limits = match crate::webhook_listener::raise_open_files_limit() {
        Ok(open_files) => Limits::default().within_open_files(open_files),
        Err(e) => {
            crate::errln!("note: cannot read the open-files limit ({e}); assuming 1024");
            Limits::default().within_open_files(1024)
        }
    };
    let listener = tokio::net::TcpListener::bind(&settings.listen)
        .await
        .map_err(|e| Error::infra(format!("cannot listen on {}: {e}", settings.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::infra(format!("no local address: {e}")))?;
    // The store stays open while the server lives; everything it runs shares it. The
    // data processor writes observations from inside the runtime: open the detail here,
    // not in its first batch.
    app.store()?.open_detail()?;
    let local = Local::bind(&app.project().socket())?;
    crate::outln!("lowtouch serve: listening on http://{addr} (webhooks: POST /hooks/github)");
    crate::outln!(
        "lowtouch serve: local API on {} (run, history, status, pause, resume, lock, unlock, cancel)",
        local.path().display()
    );
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let activity = Activity::default();
    activity.set(Now {
        doing: "starting".into(),
        queue: Vec::new(),
    });
    app.attach_activity(activity.clone());

    let (wake_tx, wakes) = unbounded_channel::<Wake>();
    let executor = commands(app.clone(), wake_tx.clone());
    let api = {
        let app = app.clone();
        tokio::spawn(async move {
            axum::serve(local, crate::api::server::router(executor))
                .with_graceful_shutdown(stopped(app))
                .await
        })
    };
    let _router = daemons::start(&app, &settings.router, wake_tx.clone()).await?;
    let routes = {
        let app = app.clone();
        hooks::routes(
            secret.map(String::into_bytes),
            BodyBudget::new(limits.clone()),
            wake_tx.clone(),
            move || app.runs().preempt(),
            activity.clone(),
        )
    };
    let webhooks = tokio::spawn(crate::webhook_listener::serve(
        listener,
        routes,
        limits,
        stopped(app.clone()),
    ));
    // Ctrl-C or SIGTERM wakes the loop.
    {
        let (app, wake) = (app.clone(), wake_tx.clone());
        tokio::spawn(async move {
            stopped(app).await;
            let _ = wake.send(Wake::Stop);
        });
    }
    drop(wake_tx);
    Server::new(app.clone(), settings, activity)
        .run(wakes)
        .await;
    let _ = webhooks.await;
    let _ = api.await;
    crate::errln!("lowtouch serve: stopped");
    Ok(exit::INTERRUPTED)
}

/// Resolves when Ctrl-C or SIGTERM arrived (the handlers are lowtouch's own).
async fn stopped(app: Arc<App>) {
    while !app.shutting_down() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A run waiting for its environment or running.
struct Job {
    request: RunRequest,
    environments: Vec<String>,
    origin: Origin,
    /// How it reads in the log and in `lowtouch status`.
    what: String,
}

impl Needs for Job {
    fn environments(&self) -> &[String] {
        &self.environments
    }
}

/// Who asked for a job: it decides where its output goes and what follows it.
enum Origin {
    /// A person, through the local API: output and exit code go back to them.
    Api {
        sink: Arc<ClientSink>,
        console: Arc<dyn Sink>,
        finish: Box<dyn FnOnce(Result<Ran, Error>) -> i32 + Send>,
    },
    /// A change a round found.
    Change,
    Schedule,
    Continuous,
    Event,
}

impl Origin {
    /// Runs the server started itself post their verdict; a person's and an event's
    /// diagnostics do not.
    fn publishes(&self) -> bool {
        matches!(self, Origin::Change | Origin::Schedule | Origin::Continuous)
    }

    /// The same origin for the job again, when it is one the server started itself (a
    /// person's run is never held: a person may run a paused environment).
    fn again(&self) -> Option<Origin> {
        match self {
            Origin::Api { .. } => None,
            Origin::Change => Some(Origin::Change),
            Origin::Schedule => Some(Origin::Schedule),
            Origin::Continuous => Some(Origin::Continuous),
            Origin::Event => Some(Origin::Event),
        }
    }
}

/// A job that found its environment paused or locked: it runs again once a `resume` or
/// an `unlock` frees one, and `status` lists it meanwhile.
struct Held {
    job: Job,
    /// Why it waits: `environment local is paused since …`.
    why: String,
    /// How many frees the server had seen when the job started: one that came since
    /// may have freed its environment after the job looked, so it is tried again.
    frees_at_start: u64,
}

/// What a finished task was.
enum Done {
    Job {
        id: u64,
        environments: Vec<String>,
        continuous: bool,
        person: bool,
        /// The same candidate to run again: its verdict could not decide yet.
        again: Option<Again>,
        /// It found its environment paused or locked (boxed: it holds the whole job).
        held: Option<Box<Held>>,
    },

    Round(Result<Round, Error>),
}

/// A candidate to run again, and the verdict that asks for it.
struct Again {
    request: RunRequest,
    why: String,
}

/// How long the pipelines read stay fresh: a repository's change to them is seen within it.
const REREAD: Duration = Duration::from_secs(1);

/// How far apart continuous iterations are at least: a pipeline that fails at once must
/// not spin (and a round between them finds new commits).
const BREATH: Duration = Duration::from_millis(500);

struct Server<W: Work> {
    work: Arc<W>,
    settings: Settings,
    activity: Activity,
    scheduler: Scheduler<Job>,
    tasks: JoinSet<Done>,
    /// Jobs running: what they are, the environments they hold, their controls.
    running: BTreeMap<u64, Running>,
    next_id: u64,
    /// A round is running / another is wanted after it (with its reason).
    round_running: bool,
    round_wanted: Option<(String, Scope)>,
    next_poll: Instant,
    /// Cron patterns fire after this time (the last fire, or the start).
    cron_from: chrono::DateTime<chrono::Utc>,
    /// Continuous pipelines wait until then.
    breath_until: Option<Instant>,
    /// Per environment: when its last run ended (events before are a run's doing).
    quiet_since: BTreeMap<String, i64>,
    started_us: i64,
    /// The pipelines served, and when they were read.
    served: Option<(Instant, Arc<Vec<Pipeline>>)>,
    /// Jobs waiting for their environment to be resumed or unlocked, by what they run.
    held: BTreeMap<String, Held>,
    /// How many times an environment was resumed or unlocked.
    frees: u64,
    /// The changes the last round found waiting for a paused or locked environment.
    waiting_changes: Vec<String>,
}

struct Running {
    what: String,
    environments: Vec<String>,
    control: RunControl,
    continuous: bool,
}

impl<W: Work> Server<W> {
    fn new(work: Arc<W>, settings: Settings, activity: Activity) -> Server<W> {
        Server {
            work,
            next_poll: Instant::now() + settings.poll_interval,
            settings,
            activity,
            scheduler: Scheduler::default(),
            tasks: JoinSet::new(),
            running: BTreeMap::new(),
            next_id: 0,
            round_running: false,
            round_wanted: None,
            cron_from: chrono::Utc::now(),
            breath_until: None,
            quiet_since: BTreeMap::new(),
            started_us: crate::clock::now_us(),
            served: None,
            held: BTreeMap::new(),
            frees: 0,
            waiting_changes: Vec::new(),
        }
    }

    /// The loop: wake, decide, start; until a stop, then finish what runs.
    async fn run(mut self, mut wakes: UnboundedReceiver<Wake>) {
        self.want_round("start");
        loop {
            if self.work.stopping() {
                break;
            }
            let served = self.served();
            self.start_ready(&served);
            self.show();
            let cron = triggers::next_schedule(&served, &self.cron_from);
            let cron_at = cron.as_ref().map(|(at, _, _)| {
                Instant::now()
                    + (*at - chrono::Utc::now())
                        .to_std()
                        .unwrap_or(Duration::ZERO)
            });
            let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
            let activity = self.activity.clone();
            tokio::select! {
                _ = activity.was_freed() => self.release_held(),
                wake = wakes.recv() => match wake {
                    None | Some(Wake::Stop) => break,
                    Some(wake) => self.on_wake(wake, &served),
                },
                Some(done) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    match done {
                        Ok(done) => self.on_done(done),
                        Err(e) => crate::errln!("panicked (the server goes on): {e}"),
                    }
                }
                _ = tokio::time::sleep_until(self.next_poll) => {
                    self.next_poll = Instant::now() + self.settings.poll_interval;
                    self.on_wake(Wake::Poll { why: "schedule".into() }, &served);
                }
                _ = tokio::time::sleep_until(cron_at.unwrap_or(far)), if cron_at.is_some() => {
                    if let Some((at, pipeline, pattern)) = cron {
                        self.cron_from = at;
                        self.on_wake(Wake::Schedule { pipeline, pattern }, &served);
                    }
                }
                _ = tokio::time::sleep_until(self.breath_until.unwrap_or(far)), if self.breath_until.is_some() => {
                    self.breath_until = None;
                }
            }
        }
        self.stop(wakes).await;
    }

    /// The pipelines served, read again at most every [`REREAD`]: a daemon's events wake
    /// the loop often, and reading means parsing every pipeline and its scenarios.
    fn served(&mut self) -> Arc<Vec<Pipeline>> {
        match &self.served {
            Some((at, served)) if at.elapsed() < REREAD => served.clone(),
            _ => {
                let served = Arc::new(self.work.served(&self.settings.pipelines));
                self.served = Some((Instant::now(), served.clone()));
                served
            }
        }
    }

    fn on_wake(&mut self, wake: Wake, served: &[Pipeline]) {
        let reason = wake.reason();
        match wake {
            Wake::Poll { .. } => self.want_round(&reason),
            Wake::Webhook { repository, .. } => {
                self.want_round_of(&reason, Scope::pushed(&repository))
            }
            Wake::Schedule { pipeline, pattern } => {
                // A fire while the last one still waits is the same fire.
                if self.scheduler.waiting().any(|j| {
                    matches!(j.origin, Origin::Schedule)
                        && j.request.describe() == format!("run {pipeline}")
                }) {
                    return;
                }
                let Some(p) = served.iter().find(|p| p.name == pipeline) else {
                    return;
                };
                self.submit(Job {
                    request: RunRequest::pipelines(
                        vec![pipeline.clone()],
                        Trigger::Schedule { pattern },
                    ),
                    environments: vec![p.environment.clone()],
                    origin: Origin::Schedule,
                    what: format!("run {pipeline} ({reason})"),
                });
            }
            Wake::Event(d) => {
                let quiet = self
                    .quiet_since
                    .get(&d.environment)
                    .copied()
                    .unwrap_or(self.started_us);
                let Some(event) = triggers::event_run(served, &d, quiet) else {
                    return;
                };
                if self.scheduler.claimed(&event.environment)
                    || self.work.leased(&event.environment)
                {
                    return;
                }
                let why = event.reason();
                self.submit(Job {
                    request: RunRequest::pipelines(
                        vec![event.pipeline.clone()],
                        Trigger::Event {
                            entry: event.entry,
                            vars: event.vars,
                        },
                    ),
                    environments: vec![event.environment],
                    origin: Origin::Event,
                    what: format!("run {} ({why})", event.pipeline),
                });
            }
            Wake::Api(api) => {
                let environments = self.work.environments(&api.request);
                self.submit(Job {
                    what: format!("{} (asked through the local API)", api.request.describe()),
                    environments,
                    request: api.request,
                    origin: Origin::Api {
                        sink: api.sink,
                        console: api.console,
                        finish: api.finish,
                    },
                });
            }
            Wake::Stop => {}
        }
    }

    /// Queues a job; a continuous run on its environment gives way at its next scenario
    /// boundary.
    fn submit(&mut self, job: Job) {
        if !matches!(job.origin, Origin::Continuous) {
            for r in self.running.values() {
                if r.continuous && r.environments.iter().any(|e| job.environments.contains(e)) {
                    r.control.preempt();
                }
            }
        }
        self.scheduler.submit(job);
    }

    fn want_round(&mut self, reason: &str) {
        self.want_round_of(reason, Scope::All);
    }

    /// A round of `scope` (a webhook's: the pushed repository only).
    fn want_round_of(&mut self, reason: &str, scope: Scope) {
        self.round_wanted = Some(match self.round_wanted.take() {
            Some((earlier, wider)) => (format!("{earlier}; {reason}"), wider.with(scope)),
            None => (reason.to_string(), scope),
        });
    }

    /// Starts the round wanted, the jobs whose environments are free, and the continuous
    /// pipelines of environments nothing else wants.
    fn start_ready(&mut self, served: &[Pipeline]) {
        if !self.round_running
            && let Some((reason, scope)) = self.round_wanted.take()
        {
            crate::errln!("poll ({reason})");
            self.round_running = true;
            self.next_poll = Instant::now() + self.settings.poll_interval;
            let (work, only) = (self.work.clone(), self.settings.pipelines.clone());
            self.tasks
                .spawn_blocking(move || Done::Round(work.round(&only, &scope)));
        }
        let quiet =
            !self.round_running && self.round_wanted.is_none() && self.breath_until.is_none();
        if quiet {
            for p in served.iter().filter(|p| p.continuous) {
                let request = RunRequest::pipelines(vec![p.name.clone()], Trigger::Continuous);
                if self.scheduler.claimed(&p.environment)
                    || self.held.contains_key(&request.describe())
                {
                    continue;
                }
                self.scheduler.submit(Job {
                    request,
                    environments: vec![p.environment.clone()],
                    origin: Origin::Continuous,
                    what: format!("run {} (continuous)", p.name),
                });
            }
        }
        for job in self.scheduler.start() {
            self.launch(job);
        }
    }

    fn launch(&mut self, job: Job) {
        let id = self.next_id;
        self.next_id += 1;
        let control = self.work.control();
        let continuous = matches!(job.origin, Origin::Continuous);
        let person = matches!(job.origin, Origin::Api { .. });
        self.running.insert(
            id,
            Running {
                what: job.what.clone(),
                environments: job.environments.clone(),
                control: control.clone(),
                continuous,
            },
        );
        let work = self.work.clone();
        let environments = job.environments.clone();
        match job.origin {
            Origin::Api {
                sink,
                console,
                finish,
            } => {
                crate::errln!("{}", job.what);
                // A client that hangs up (Ctrl-C) cancels its run.
                let watch = {
                    let (sink, control) = (sink.clone(), control.clone());
                    tokio::spawn(async move {
                        loop {
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            if sink.gone() {
                                control.cancel();
                                break;
                            }
                        }
                    })
                };
                self.tasks.spawn_blocking(move || {
                    let code = crate::console::capture(console, || {
                        finish(work.run(&job.request, &control))
                    });
                    sink.exit(code);
                    watch.abort();
                    Done::Job {
                        id,
                        environments,
                        continuous,
                        person,
                        again: None,
                        held: None,
                    }
                });
            }
            origin => {
                crate::errln!("{}", job.what);
                let publishes = origin.publishes();
                let retry = origin.again();
                let frees_at_start = self.frees;
                self.tasks.spawn_blocking(move || {
                    let mut held = None;
                    let again = match work.run(&job.request, &control) {
                        Ok(Ran::Done(outcome)) => {
                            if publishes {
                                work.publish(&outcome);
                            }
                            crate::app::judge::again(&job.request, outcome.verdict.as_ref()).map(
                                |request| Again {
                                    request,
                                    why: outcome
                                        .verdict
                                        .as_ref()
                                        .map(|v| v.headline())
                                        .unwrap_or_default(),
                                },
                            )
                        }
                        Ok(Ran::Held { why, .. }) => {
                            held = retry.map(|origin| {
                                Box::new(Held {
                                    job: Job { origin, ..job },
                                    why,
                                    frees_at_start,
                                })
                            });
                            None
                        }
                        Ok(_) => None,
                        Err(e) => {
                            crate::errln!("failed (the server goes on): {e}");
                            None
                        }
                    };
                    Done::Job {
                        id,
                        environments,
                        continuous,
                        person,
                        again,
                        held,
                    }
                });
            }
        }
    }

    fn on_done(&mut self, done: Done) {
        match done {
            Done::Round(result) => {
                self.round_running = false;
                let (due, waiting) = match result {
                    Ok(round) => (round.due, round.waiting),
                    Err(e) => {
                        crate::errln!("failed (the server goes on): {e}");
                        (Vec::new(), Vec::new())
                    }
                };
                self.waiting_changes = waiting
                    .into_iter()
                    .map(|(d, why)| {
                        let what = format!("{} ({}): {}", d.pipeline, d.action.as_str(), d.because);
                        format!("{what} (held: {why}; runs when it is resumed or unlocked)")
                    })
                    .collect();
                if due.is_empty() {
                    crate::outln!("nothing new to run");
                }
                crate::errln!(
                    "poll done: {} run{}",
                    due.len(),
                    if due.len() == 1 { "" } else { "s" }
                );
                for d in due {
                    self.submit(Job {
                        request: d.request(),
                        environments: vec![d.environment.clone()],
                        origin: Origin::Change,
                        what: format!(
                            "running {} ({}): {}",
                            d.pipeline,
                            d.action.as_str(),
                            d.because
                        ),
                    });
                }
            }
            Done::Job {
                id,
                environments,
                continuous,
                person,
                again,
                held,
            } => {
                self.running.remove(&id);
                self.scheduler.finished(&environments);
                let held_now = held.is_some();
                match held {
                    // Freed while it ran: it may have looked just before.
                    Some(h) if h.frees_at_start < self.frees => self.submit(h.job),
                    // A newer one of the same run replaces it: one waits per run.
                    Some(h) => {
                        self.held.insert(h.job.request.describe(), *h);
                    }
                    None => {}
                }
                if let Some(again) = again {
                    let origin = match again.request.trigger {
                        Trigger::Schedule { .. } => Origin::Schedule,
                        _ => Origin::Change,
                    };
                    self.submit(Job {
                        what: format!(
                            "{} again, the same candidate ({})",
                            again.request.describe(),
                            again.why
                        ),
                        request: again.request,
                        environments: environments.clone(),
                        origin,
                    });
                }
                let now = crate::clock::now_us();
                for e in &environments {
                    self.quiet_since.insert(e.clone(), now);
                }
                if continuous && !held_now {
                    self.breath_until = Some(Instant::now() + BREATH);
                    self.want_round("continuous");
                } else if person {
                    self.want_round("after a run asked through the local API");
                }
            }
        }
    }

    /// What `lowtouch status` shows.
    fn show(&self) {
        let doing = if self.running.is_empty() && !self.round_running {
            "idle: waiting for a change, a schedule or a request".to_string()
        } else {
            let mut parts: Vec<String> = self
                .running
                .values()
                .map(|r| {
                    let what = r.what.trim_start_matches("run ");
                    format!("running {}", what.trim_start_matches("running "))
                })
                .collect();
            if self.round_running {
                parts.push("polling for changes".to_string());
            }
            parts.join("; ")
        };
        let waiting = self.scheduler.waiting().map(|j| j.what.clone());
        let held = self.held.values().map(|h| {
            format!(
                "{} (held: {}; runs when it is resumed or unlocked)",
                h.job.what, h.why
            )
        });
        let changes = self.waiting_changes.iter().cloned();
        self.activity.set(Now {
            doing,
            queue: waiting.chain(held).chain(changes).collect(),
        });
    }

    /// An environment was resumed or unlocked: every held job is tried again now, not at
    /// the next poll (one whose environment is still held comes back held).
    fn release_held(&mut self) {
        self.frees += 1;
        for (_, held) in std::mem::take(&mut self.held) {
            self.submit(held.job);
        }
        // Changes that waited are found again by a round, which takes their tips.
        self.want_round("an environment was resumed or unlocked");
    }

    /// Stops: what waits is told so, what runs stops (its control sees the signal) and is
    /// waited for.
    async fn stop(&mut self, mut wakes: UnboundedReceiver<Wake>) {
        wakes.close();
        let mut waiting: Vec<Job> = self.scheduler.drain();
        while let Ok(wake) = wakes.try_recv() {
            if let Wake::Api(api) = wake {
                waiting.push(Job {
                    request: api.request,
                    environments: Vec::new(),
                    origin: Origin::Api {
                        sink: api.sink,
                        console: api.console,
                        finish: api.finish,
                    },
                    what: String::new(),
                });
            }
        }
        for job in waiting {
            if let Origin::Api { sink, .. } = job.origin {
                sink.write(
                    Stream::Err,
                    "lowtouch serve stopped before this run started\n",
                );
                sink.exit(exit::INTERRUPTED);
            }
        }
        for r in self.running.values() {
            r.control.cancel();
        }
        while self.tasks.join_next().await.is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::app::round::{Chosen, Due};
    use crate::app::{RunOutcome, Selection};
    use crate::watch::Action;

    /// Work that records what it was asked and holds each run until its pipeline is
    /// released (or its control stops it).
    #[derive(Default)]
    struct Fake {
        due: Mutex<Vec<Due>>,
        running: Mutex<Vec<String>>,
        /// Every pipeline that was running at once with another, as seen at its start.
        overlapped: Mutex<Vec<(String, Vec<String>)>>,
        released: Mutex<Vec<String>>,
        finished: Mutex<Vec<(String, bool)>>,
        stopping: AtomicBool,
        /// Environments paused: a run on one comes back held.
        paused: Mutex<Vec<String>>,
        /// How many runs came back held.
        held: std::sync::atomic::AtomicUsize,
    }

    fn pipeline_of(request: &RunRequest) -> String {
        match &request.selection {
            Selection::Pipelines(names) => names.join(","),
            other => format!("{other:?}"),
        }
    }

    impl Work for Fake {
        fn run(&self, request: &RunRequest, control: &RunControl) -> Result<Ran, Error> {
            let name = pipeline_of(request);
            if let Some(env) = self
                .paused
                .lock()
                .unwrap()
                .iter()
                .find(|e| name.contains(*e))
            {
                self.held.fetch_add(1, Ordering::SeqCst);
                return Ok(Ran::Held {
                    pipeline: name.clone(),
                    environment: env.clone(),
                    why: format!("environment {env} is paused"),
                });
            }
            {
                let mut running = self.running.lock().unwrap();
                self.overlapped
                    .lock()
                    .unwrap()
                    .push((name.clone(), running.clone()));
                running.push(name.clone());
            }
            while !self.released.lock().unwrap().contains(&name) && !control.stop_requested() {
                std::thread::sleep(Duration::from_millis(2));
            }
            self.running.lock().unwrap().retain(|n| *n != name);
            self.finished
                .lock()
                .unwrap()
                .push((name.clone(), control.stop_requested()));
            Ok(Ran::Skipped {
                pipeline: name,
                why: "fake".into(),
            })
        }
        fn round(&self, _: &[String], _: &Scope) -> Result<Round, Error> {
            Ok(Round {
                due: std::mem::take(&mut *self.due.lock().unwrap()),
                waiting: Vec::new(),
            })
        }
        fn publish(&self, _: &RunOutcome) {}
        fn served(&self, _: &[String]) -> Vec<Pipeline> {
            Vec::new()
        }
        fn control(&self) -> RunControl {
            RunControl::detached()
        }
        fn stopping(&self) -> bool {
            self.stopping.load(Ordering::SeqCst)
        }
        fn leased(&self, _: &str) -> bool {
            false
        }
        fn environments(&self, _: &RunRequest) -> Vec<String> {
            Vec::new()
        }
    }

    fn due(pipeline: &str, environment: &str) -> Due {
        Due {
            pipeline: pipeline.into(),
            environment: environment.into(),
            action: Action::RunPipeline,
            because: format!("r main {pipeline}"),
            chosen: Chosen {
                repository: "r".into(),
                git_ref: "refs/heads/main".into(),
                commit: "c0ffee".into(),
            },
            candidate: None,
        }
    }

    fn settings() -> Settings {
        Settings {
            listen: String::new(),
            router: String::new(),
            poll_interval: Duration::from_secs(3600),
            pipelines: Vec::new(),
        }
    }

    async fn until(what: &str, mut done: impl FnMut() -> bool) {
        for _ in 0..2500 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(4)).await;
        }
        panic!("never: {what}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_run_held_by_a_paused_environment_is_listed_and_runs_as_soon_as_it_is_freed() {
        let fake = Arc::new(Fake::default());
        fake.paused.lock().unwrap().push("on-p".into());
        *fake.due.lock().unwrap() = vec![due("a-on-p", "p")];
        let activity = Activity::default();
        let server = Server::new(fake.clone(), settings(), activity.clone());
        let (wake, wakes) = unbounded_channel();
        let looping = tokio::spawn(server.run(wakes));
        until("the status lists it as held", || {
            activity
                .get()
                .queue
                .iter()
                .any(|q| q.contains("a-on-p") && q.contains("held: environment on-p is paused"))
        })
        .await;
        assert_eq!(fake.held.load(Ordering::SeqCst), 1);
        assert!(fake.running.lock().unwrap().is_empty());
        // A round that finds the same change again leaves one waiting, not two.
        *fake.due.lock().unwrap() = vec![due("a-on-p", "p")];
        wake.send(Wake::Poll { why: "test".into() }).unwrap();
        until("held twice", || fake.held.load(Ordering::SeqCst) == 2).await;
        until("listed once", || {
            let queue = activity.get().queue;
            queue.iter().filter(|q| q.contains("a-on-p")).count() == 1
        })
        .await;
        // Resumed: it runs at once (the poll interval is an hour).
        fake.paused.lock().unwrap().clear();
        activity.freed();
        until("it runs", || {
            fake.running.lock().unwrap().contains(&"a-on-p".to_string())
        })
        .await;
        fake.released.lock().unwrap().push("a-on-p".into());
        until("it finished", || fake.finished.lock().unwrap().len() == 1).await;
        until("nothing is listed", || activity.get().queue.is_empty()).await;
        wake.send(Wake::Stop).unwrap();
        looping.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_on_two_environments_overlap_and_a_third_waits_for_its_environment() {
        let fake = Arc::new(Fake::default());
        *fake.due.lock().unwrap() = vec![due("a", "env-a"), due("b", "env-b"), due("a2", "env-a")];
        let activity = Activity::default();
        let server = Server::new(fake.clone(), settings(), activity.clone());
        let (wake, wakes) = unbounded_channel();
        let looping = tokio::spawn(server.run(wakes));

        until("a and b run at once", || {
            fake.running.lock().unwrap().len() == 2
        })
        .await;
        let running = fake.running.lock().unwrap().clone();
        assert!(running.contains(&"a".to_string()) && running.contains(&"b".to_string()));
        until("a2 shows as waiting", || activity.get().queue.len() == 1).await;
        assert!(
            activity.get().queue[0].starts_with("running a2"),
            "{:?}",
            activity.get()
        );

        // b ends; a2 still waits for a's environment.
        fake.released.lock().unwrap().push("b".into());
        until("b finished", || fake.finished.lock().unwrap().len() == 1).await;
        assert!(!fake.running.lock().unwrap().contains(&"a2".to_string()));
        fake.released.lock().unwrap().push("a".into());
        until("a2 runs after a", || {
            fake.running.lock().unwrap().contains(&"a2".to_string())
        })
        .await;
        let overlapped = fake.overlapped.lock().unwrap().clone();
        assert_eq!(
            overlapped.last().unwrap(),
            &("a2".to_string(), Vec::<String>::new())
        );

        // A stop cancels what runs and ends the loop.
        wake.send(Wake::Stop).unwrap();
        looping.await.unwrap();
        let finished = fake.finished.lock().unwrap().clone();
        assert_eq!(
            finished,
            vec![
                ("b".to_string(), false),
                ("a".to_string(), false),
                ("a2".to_string(), true)
            ]
        );
    }

    #[test]
    fn a_run_held_before_a_free_it_did_not_see_is_tried_again_not_kept() {
        let mut server = Server::new(Arc::new(Fake::default()), settings(), Activity::default());
        let held = |frees_at_start| Held {
            job: Job {
                request: d_request(),
                environments: vec!["env-a".into()],
                origin: Origin::Change,
                what: "run a".into(),
            },
            why: "environment env-a is paused".into(),
            frees_at_start,
        };
        let done = |held| Done::Job {
            id: 0,
            environments: vec!["env-a".into()],
            continuous: false,
            person: false,
            again: None,
            held: Some(Box::new(held)),
        };
        // Held with no free since it started: it waits.
        server.on_done(done(held(0)));
        assert_eq!(
            (server.held.len(), server.scheduler.waiting().count()),
            (1, 0)
        );
        // A free takes every held job to the queue.
        server.release_held();
        assert_eq!(
            (server.held.len(), server.scheduler.waiting().count()),
            (0, 1)
        );
        // One that started before that free and came back held after it goes again.
        server.on_done(done(held(0)));
        assert_eq!(
            (server.held.len(), server.scheduler.waiting().count()),
            (0, 2)
        );
        // One that started after it was held for good reason.
        server.on_done(done(held(1)));
        assert_eq!(server.held.len(), 1);
    }

    #[test]
    fn an_inconclusive_candidate_is_queued_again_on_its_environment() {
        let fake = Arc::new(Fake::default());
        let mut server = Server::new(fake, settings(), Activity::default());
        let request = d_request();
        // Fed by hand: a change's run ended INCONCLUSIVE with looks left.
        server.on_done(Done::Job {
            id: 0,
            environments: vec!["env-a".into()],
            continuous: false,
            person: false,
            again: Some(Again {
                request: request.clone(),
                why: "INCONCLUSIVE: about 2 more runs would decide".into(),
            }),
            held: None,
        });
        let waiting: Vec<&Job> = server.scheduler.waiting().collect();
        assert_eq!(waiting.len(), 1);
        assert_eq!(waiting[0].environments, vec!["env-a".to_string()]);
        assert!(matches!(waiting[0].origin, Origin::Change));
        assert_eq!(waiting[0].request.trigger, request.trigger);
        assert!(
            waiting[0].what.contains("again") && waiting[0].what.contains("INCONCLUSIVE"),
            "{}",
            waiting[0].what
        );
        // A run that decided queues nothing.
        server.on_done(Done::Job {
            id: 1,
            environments: vec!["env-b".into()],
            continuous: false,
            person: false,
            again: None,
            held: None,
        });
        assert_eq!(server.scheduler.waiting().count(), 1);
    }

    fn d_request() -> RunRequest {
        let mut d = due("a", "env-a");
        d.action = Action::RerunScenarios;
        d.request()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn webhooks_during_a_round_coalesce_into_one_more_round() {
        let fake = Arc::new(Fake::default());
        let server = Server::new(fake.clone(), settings(), Activity::default());
        let (wake, wakes) = unbounded_channel();
        let mut server = server;
        // Fed by hand: a round is running, three deliveries arrive.
        server.want_round("start");
        server.start_ready(&[]);
        assert!(server.round_running);
        for n in 0..3 {
            server.on_wake(
                Wake::Webhook {
                    repository: "o/r".into(),
                    git_ref: format!("refs/heads/b{n}"),
                    created: false,
                },
                &[],
            );
        }
        assert_eq!(
            server.round_wanted.clone(),
            Some((
                "webhook: push to o/r refs/heads/b0; webhook: push to o/r refs/heads/b1; \
                 webhook: push to o/r refs/heads/b2"
                    .to_string(),
                Scope::pushed("o/r")
            ))
        );
        // While the first round runs, the second does not start.
        server.start_ready(&[]);
        assert!(server.round_wanted.is_some());
        drop(wake);
        fake.stopping.store(true, Ordering::SeqCst);
        server.run(wakes).await;
    }
}
