//! The events that move a node between provision states.

wire_enum! {
    /// An event of upstream's provision state machine.
    ///
    /// Some are sent by API requests (see [`ApiVerb`](crate::ApiVerb)); the
    /// others (`wait`, `resume`, `hold`, `done`, `fail`) only by the
    /// conductor and the ramdisk agent as work progresses. The names are the
    /// strings upstream passes to its machine; an API request whose target is
    /// not a verb is looked up here verbatim, so they are wire-visible too.
    pub enum Event ("event") {
        /// Take a node under management: `enroll` → `verifying`,
        /// or move `available` and failed states back to `manageable`.
        Manage => "manage",
        /// Make a manageable node available, through automated cleaning.
        Provide => "provide",
        /// Start hardware inspection.
        Inspect => "inspect",
        /// Start manual cleaning, or go on to cleaning after a teardown.
        Clean => "clean",
        /// Start adopting a node deployed outside Ironic.
        Adopt => "adopt",
        /// Deploy an available node, or retry a failed deployment.
        Deploy => "deploy",
        /// Deploy again over an existing (or failed) deployment.
        Rebuild => "rebuild",
        /// Tear down an instance.
        Delete => "delete",
        /// Boot the rescue ramdisk.
        Rescue => "rescue",
        /// Leave rescue.
        Unrescue => "unrescue",
        /// Run service steps on a deployed node.
        Service => "service",
        /// Work continues asynchronously; wait for the agent.
        Wait => "wait",
        /// The agent called back; continue the work.
        Resume => "resume",
        /// A step asked to hold the node.
        Hold => "hold",
        /// An operator released a held node.
        Unhold => "unhold",
        /// An operator aborted the operation in progress.
        Abort => "abort",
        /// The operation finished successfully.
        Done => "done",
        /// The operation failed (also used on timeouts and after a crash).
        Fail => "fail",
    }
}
